//! What every handler gets: the services, built once per process.

use std::sync::Arc;

use codebox_core::auth::AccountService;
use codebox_core::languages::Language;
use codebox_core::tasks::TaskService;
use parking_lot::RwLock;

#[derive(Clone)]
pub struct AppState {
    pub accounts: AccountService,
    pub tasks: TaskService,
    /// What `GET /languages` lists; workers fill in the versions they find.
    pub languages: Arc<RwLock<Vec<Language>>>,
}

impl AppState {
    pub fn new(accounts: AccountService, tasks: TaskService) -> Self {
        Self {
            accounts,
            tasks,
            languages: Arc::new(RwLock::new(codebox_core::languages::unprobed())),
        }
    }

    pub fn set_languages(&self, languages: Vec<Language>) {
        *self.languages.write() = languages;
    }
}
