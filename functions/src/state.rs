//! What every handler gets: the services, built once per process.

use std::sync::Arc;

use codebox_core::auth::AccountService;
use codebox_core::languages::Language;
use codebox_core::limits::ClientLimits;
use codebox_core::tasks::TaskService;
use parking_lot::RwLock;

#[derive(Clone)]
pub struct AppState {
    pub accounts: AccountService,
    pub tasks: TaskService,
    pub limits: ClientLimits,
    /// Origins browsers may call from (`CORS_ORIGINS`); empty: no CORS headers at all.
    pub cors_origins: Arc<Vec<String>>,
    /// What `GET /languages` lists; workers fill in the versions they find.
    pub languages: Arc<RwLock<Vec<Language>>>,
    /// Where a Lambda function puts a response too big for Lambda to carry
    /// ([`crate::lambda::offload`]); `None` where responses are never offloaded.
    pub large_responses: Option<Arc<dyn codebox_core::ports::BlobStore>>,
    /// The longest an event stream (`GET /task/{id}/events`) follows its task.
    pub events_max: std::time::Duration,
    /// When the stored language listing was last read.
    pub languages_read: Arc<parking_lot::Mutex<Option<std::time::Instant>>>,
    /// Where clients reach the API (`PUBLIC_URL`); `None`: as each request says.
    pub public_url: Option<String>,
    /// Where tasks' webhooks may point, and users' signing keys; `None`: this API takes
    /// no webhooks.
    pub webhooks: Option<Arc<crate::webhooks::Webhooks>>,
    /// The calls of ended tasks' webhooks, in a process that stores tasks' ends.
    pub webhook_calls: Option<Arc<crate::webhooks::WebhookCalls>>,
    /// What `GET /judge0/statistics` counted for each caller, kept ten minutes.
    pub judge0_statistics: Arc<crate::handlers::judge0::StatisticsCache>,
    /// How `/judge0/` tells a program killed by a signal (`JUDGE0_SIGNALS`).
    pub judge0_signals: crate::handlers::judge0::SignalReport,
}

/// How long an event stream follows its task by default: longer than any task runs.
pub const EVENTS_MAX: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl AppState {
    pub fn new(
        accounts: AccountService,
        tasks: TaskService,
        limits: ClientLimits,
        cors_origins: Vec<String>,
    ) -> Self {
        Self {
            accounts,
            tasks,
            limits,
            cors_origins: Arc::new(cors_origins),
            languages: Arc::new(RwLock::new(codebox_core::languages::unprobed())),
            large_responses: None,
            events_max: EVENTS_MAX,
            languages_read: Arc::default(),
            public_url: None,
            webhooks: None,
            webhook_calls: None,
            judge0_statistics: Arc::default(),
            judge0_signals: Default::default(),
        }
    }

    pub fn set_languages(&self, languages: Vec<Language>) {
        *self.languages.write() = languages;
    }
}
