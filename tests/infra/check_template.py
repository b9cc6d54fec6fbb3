"""Reads infra/template.yaml (and the Makefile beside it) as an engineer deploying it
would, and checks what a production stack needs. Run by tests/tests/infra.rs; prints one
line per problem and exits non-zero when there is any.

Usage: check_template.py TEMPLATE MAKEFILE
"""

import json
import os
import re
import sys

from cfnlint.decode import decode

template, _ = decode(sys.argv[1])
makefile = open(sys.argv[2], encoding="utf-8").read()
resources = template["Resources"]
params = template["Parameters"]
problems = []


def problem(text):
    problems.append(text)


def of_type(kind):
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def walk(node, path=()):
    """Every (path, dict) in the tree."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def as_list(x):
    return x if isinstance(x, list) else [x]


def refs(node):
    """Names a node refers to (Ref, GetAtt, and ${...} in Sub)."""
    out = set()
    for _, d in walk(node):
        if "Ref" in d and isinstance(d["Ref"], str):
            out.add(d["Ref"])
        if "Fn::GetAtt" in d:
            att = d["Fn::GetAtt"]
            out.add(att[0] if isinstance(att, list) else att.split(".")[0])
        if "Fn::Sub" in d:
            sub = d["Fn::Sub"]
            text = sub if isinstance(sub, str) else sub[0]
            out.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
    return out


# 1. One architecture for the build, the functions and the hosts: one variable drives all.
arch = params.get("Architecture", {})
if sorted(arch.get("AllowedValues", [])) != ["arm64", "x86_64"]:
    problem("parameter Architecture must allow exactly arm64 and x86_64")
default = re.search(r"^ARCH \?= (?:\$\(or \$\(LAMBDA_ARCH\),)?(\w+)", makefile, re.M)
if not default or default.group(1) != arch.get("Default"):
    problem("the Makefile's ARCH and the template's Architecture must default alike")
for name, r in resources.items():
    archs = r.get("Properties", {}).get("Architectures")
    if archs is not None and archs != [{"Ref": "Architecture"}]:
        problem(f"{name}: Architectures must be [!Ref Architecture]")
if template["Globals"]["Function"].get("Architectures") != [{"Ref": "Architecture"}]:
    problem("Globals.Function.Architectures must be [!Ref Architecture]")
deploy = re.search(r"^deploy:.*?(?=^\S|\Z)", makefile, re.S | re.M)
if not deploy or "Architecture=$(ARCH)" not in deploy.group(0):
    problem("make deploy must pass Architecture=$(ARCH) to the stack")
if not re.search(r"^LAMBDA_TARGET = \$\(if \$\(filter arm64,\$\(ARCH\)\),--arm64,--x86-64\)", makefile, re.M):
    problem("make lambda-build must derive its target from ARCH")
build = re.search(r"^lambda-build:.*?(?=^\S|\Z)", makefile, re.S | re.M)
if not build or "$(LAMBDA_TARGET)" not in build.group(0):
    problem("make lambda-build must build for $(LAMBDA_TARGET)")
# The hosts: their AMI and instance type follow the architecture, and an instance type of
# another is refused before anything is made.
if template.get("Conditions", {}).get("OnGraviton") != {"Fn::Equals": [{"Ref": "Architecture"}, "arm64"]}:
    problem("condition OnGraviton must be Architecture = arm64")
for lt in of_type("AWS::EC2::LaunchTemplate").values():
    data = lt["Properties"]["LaunchTemplateData"]
    ami = data.get("ImageId", {}).get("Fn::If", [None, None, {}])[2].get("Fn::If", [])
    if (
        len(ami) != 3
        or ami[0] != "OnGraviton"
        or "/amazon-linux-2023/arm64/" not in ami[1]
        or "/amazon-linux-2023/recommended/" not in ami[2]
    ):
        problem("the launch template's AMI must be of the Architecture (OnGraviton: arm64's, else x86_64's)")
    kind = data.get("InstanceType", {}).get("Fn::If", [None, None, {}])[2].get("Fn::If", [])
    if len(kind) != 3 or kind[0] != "OnGraviton" or not re.match(r"^[cmr]\d+g", kind[1]) or re.match(r"^[cmr]\d+g", kind[2]):
        problem("the launch template's default instance type must be of the Architecture")
rule = json.dumps(template.get("Rules", {}))
if "WorkerInstanceType" not in rule or "Architecture" not in rule:
    problem("a rule must hold WorkerInstanceType to the Architecture")
else:
    for assertion in template["Rules"]["HostsOfTheArchitecture"]["Assertions"]:
        for branch in assertion["Assert"]["Fn::Or"]:
            want, types = branch["Fn::And"][0]["Fn::Equals"][1], branch["Fn::And"][1]["Fn::Contains"][0]
            graviton = [t for t in types if re.match(r"^[cmr]\d+g", t)]
            if (want == "arm64") != (len(graviton) == len(types)) or (want == "x86_64" and graviton):
                problem(f"the {want} hosts' instance types are not all of {want}")
user_data = json.dumps([lt["Properties"]["LaunchTemplateData"].get("UserData") for lt in of_type("AWS::EC2::LaunchTemplate").values()])
if "{{.Architecture}}" not in user_data or "WorkerImageUri" not in user_data:
    problem("worker hosts must check that both images are of their architecture")

# 2. Least privilege: no wildcard resource, no action the code never uses, no SAM policy
# template broader than the calls made.
UNUSED = {"dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:*", "s3:*", "sqs:*"}
for name, r in resources.items():
    for path, d in walk(r.get("Properties", {})):
        if "Effect" in d and "Action" in d:
            actions = as_list(d["Action"])
            wild = any(res == "*" for res in as_list(d.get("Resource", [])))
            if wild and d["Effect"] == "Allow" and not all(a.startswith(("logs:", "xray:", "cloudwatch:PutMetricData")) for a in actions):
                problem(f"{name}: {actions} on Resource '*'")
            for a in actions:
                if a in UNUSED and d["Effect"] == "Allow":
                    problem(f"{name}: {a} is granted but never used")
    for policy in as_list(r.get("Properties", {}).get("Policies", [])):
        if isinstance(policy, dict):
            for key in policy:
                if key in ("DynamoDBCrudPolicy", "DynamoDBReadPolicy", "DynamoDBWritePolicy", "S3CrudPolicy", "S3ReadPolicy", "S3WritePolicy"):
                    problem(f"{name}: {key} grants more than the calls made (Scan, batches, ...)")
# Whoever reads blobs may list the bucket: a missing key is then 404, not 403.
for name, r in resources.items():
    statements = [d for _, d in walk(r.get("Properties", {})) if "Effect" in d and "Action" in d]
    reads = any("s3:GetObject" in as_list(d["Action"]) for d in statements)
    lists = any("s3:ListBucket" in as_list(d["Action"]) for d in statements)
    if reads and not lists:
        problem(f"{name}: reads blobs without s3:ListBucket (a missing key would be 403)")

# Whoever reads blobs (serving results) can offload a response too big for Lambda; the
# language listing (a few KB, meta/languages.json) is no result.
def serves_http(r):
    return any(e.get("Type") == "HttpApi" for e in r["Properties"].get("Events", {}).values())


def only_the_listing(d):
    return "meta/languages.json" in json.dumps(d.get("Resource"))


for name, r in of_type("AWS::Serverless::Function").items():
    if not serves_http(r):
        continue
    statements = [d for _, d in walk(r.get("Properties", {})) if "Effect" in d and "Action" in d]
    reads = any(
        "s3:GetObject" in as_list(d["Action"]) and not only_the_listing(d) for d in statements
    )
    puts = any("s3:PutObject" in as_list(d["Action"]) for d in statements)
    if reads and not puts:
        problem(f"{name}: serves blobs but cannot offload a response too big for Lambda (s3:PutObject)")
rules = resources["BlobBucket"]["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
if not any(r.get("Prefix") == "responses/" for r in rules):
    problem("BlobBucket: offloaded responses (responses/) never expire")

# Requests fit a Lambda invocation: images beyond what one carries go up through a
# presigned S3 URL (POST /task/upload on the create-task function), which may sign puts.
if not any(r.get("Prefix") == "uploads/" and r.get("ExpirationInDays") == 1 for r in rules):
    problem("BlobBucket: uploads (uploads/) must expire after a day")
create = resources["CreateTaskFunction"]["Properties"]
routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in create.get("Events", {}).values()}
if ("POST", "/task/upload") not in routes:
    problem("CreateTaskFunction: does not serve POST /task/upload")
inline = int(create.get("Environment", {}).get("Variables", {}).get("MAX_INLINE_IMAGE_BYTES", 10 * 1024 * 1024))
# base64 in the JSON body, base64 again in the event API Gateway sends; 6 MiB a request.
if inline * 4 / 3 * 4 / 3 + 64 * 1024 > 6 * 1024 * 1024:
    problem(f"CreateTaskFunction: MAX_INLINE_IMAGE_BYTES {inline} does not fit a Lambda invocation")
signs_puts = any(
    "s3:PutObject" in as_list(d["Action"]) for _, d in walk(create.get("Policies", {})) if "Action" in d
)
if not signs_puts:
    problem("CreateTaskFunction: cannot sign upload URLs (s3:PutObject)")

# 3. Stateful resources outlive the stack and any replacement.
for kind in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SecretsManager::Secret"):
    for name, r in of_type(kind).items():
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if r.get(policy) != "Retain":
                problem(f"{name}: {policy} must be Retain")

# 4. Workers scale on the backlog, roll out and roll back.
asg = of_type("AWS::AutoScaling::AutoScalingGroup")
for name, r in asg.items():
    p = r["Properties"]
    if p.get("MaxSize") == p.get("MinSize"):
        problem(f"{name}: MaxSize equals MinSize (a deployment cannot place its new workers)")
    if "AutoScalingRollingUpdate" in r.get("UpdatePolicy", {}):
        problem(f"{name}: a rolling update policy (it hangs against scale-in and managed termination protection)")
    refreshes = [
        c for c in of_type("Custom::InstanceRefresh").values()
        if name in refs(c["Properties"].get("AutoScalingGroupName"))
        and "WorkerLaunchTemplate" in refs(c["Properties"].get("LaunchTemplateVersion"))
    ]
    if not refreshes:
        problem(f"{name}: no instance refresh when the launch template (AMI, runner image) changes")
    collected = [m for c in p.get("MetricsCollection", []) for m in c.get("Metrics", [])]
    unjoined = [
        a for a in of_type("AWS::CloudWatch::Alarm").values()
        if "GroupInServiceInstances" in json.dumps(a) and "ContainerInstanceCount" in json.dumps(a)
        and name in refs(a)
    ]
    if "GroupInServiceInstances" not in collected or not unjoined:
        problem(f"{name}: no alarm for instances in service that never join the cluster")
if int(params.get("WorkerMaxInstances", {}).get("MinValue", 0)) < 2:
    problem("WorkerMaxInstances must be at least 2")
if int(params.get("WorkerMinInstances", {}).get("Default", 1)) < 2:
    problem("WorkerMinInstances should default to 2 (two Availability Zones)")
for name, r in of_type("AWS::ECS::CapacityProvider").items():
    scaling = r["Properties"]["AutoScalingGroupProvider"].get("ManagedScaling", {})
    if scaling.get("Status") != "ENABLED":
        problem(f"{name}: managed scaling must be ENABLED")
for name, r in of_type("AWS::ECS::Service").items():
    p = r["Properties"]
    dc = p.get("DeploymentConfiguration", {})
    cb = dc.get("DeploymentCircuitBreaker", {})
    if cb.get("Enable") is not True or cb.get("Rollback") is not True:
        problem(f"{name}: the deployment circuit breaker must be enabled with rollback")
    if int(dc.get("MaximumPercent", 200)) <= 100:
        problem(f"{name}: MaximumPercent must exceed 100 so a new version can start")
    if "DesiredCount" in p:
        problem(f"{name}: DesiredCount would reset autoscaling on every update")
    targets = [t for t in of_type("AWS::ApplicationAutoScaling::ScalableTarget").values() if name in refs(t)]
    if not targets:
        problem(f"{name}: no scalable target")
policies = of_type("AWS::ApplicationAutoScaling::ScalingPolicy")
backlog = [
    p for p in policies.values()
    if p["Properties"].get("PolicyType") == "TargetTrackingScaling"
    and any(d.get("Namespace") == "AWS/SQS" and "TaskQueue" in refs(d) for _, d in walk(p))
]
if not backlog:
    problem("no target-tracking scaling policy on the task queue's backlog")

# 5. Routes are throttled.
for name, r in of_type("AWS::Serverless::HttpApi").items():
    routes = r["Properties"].get("DefaultRouteSettings", {})
    if "ThrottlingRateLimit" not in routes or "ThrottlingBurstLimit" not in routes:
        problem(f"{name}: no route throttling (DefaultRouteSettings)")

# 6. Alarms that page for what goes wrong.
alarms = of_type("AWS::CloudWatch::Alarm")


def alarms_on(namespace, metric, target=None):
    found = []
    for name, a in alarms.items():
        for _, d in walk(a["Properties"]):
            ns = d.get("Namespace")
            mn = d.get("MetricName")
            if ns == namespace and mn == metric and (target is None or target in refs(d)):
                found.append(name)
    return found


if not alarms_on("AWS/SQS", "NumberOfMessagesReceived", "TaskDeadLetterQueue"):
    problem("no alarm on arrivals in the dead-letter queue (NumberOfMessagesReceived)")
if alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible", "TaskDeadLetterQueue"):
    problem("an alarm watches the dead-letter queue's visible messages, which the worker drains in seconds")
if not alarms_on("AWS/SQS", "ApproximateAgeOfOldestMessage", "TaskQueue"):
    problem("no alarm on the age of the oldest queued task")
if not alarms_on("ECS/ContainerInsights", "RunningTaskCount"):
    problem("no alarm on the number of running workers")
functions = set(of_type("AWS::Serverless::Function"))
for metric in ("Errors", "Throttles"):
    covered = set()
    for name, a in alarms.items():
        for _, d in walk(a["Properties"]):
            if d.get("Namespace") == "AWS/Lambda" and d.get("MetricName") == metric:
                covered |= refs(d) & functions
    for f in sorted(functions - covered):
        problem(f"{f}: no alarm on its {metric}")
if not of_type("AWS::CloudWatch::Dashboard"):
    problem("no dashboard")
for name, d in of_type("AWS::CloudWatch::Dashboard").items():
    body = d["Properties"]["DashboardBody"]
    text = body["Fn::Sub"] if isinstance(body, dict) else body
    try:
        json.loads(re.sub(r"\$\{[^}]*\}", "x", text))
    except ValueError as e:
        problem(f"{name}: the dashboard body is not JSON ({e})")

# 7. One retention governs tasks and their blobs; lists read a summary projection.
tasks = resources["TasksTable"]["Properties"]
if tasks.get("TimeToLiveSpecification", {}).get("AttributeName") != "expires_at_epoch":
    problem("TasksTable: no TTL on expires_at_epoch (tasks would outlive their blobs)")
lifecycle = resources["BlobBucket"]["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
if not any(r.get("ExpirationInDays") == {"Ref": "RetentionDays"} for r in lifecycle):
    problem("BlobBucket: blobs must expire after RetentionDays, the tasks' retention")
env = template["Globals"]["Function"]["Environment"]["Variables"]
if env.get("TASK_RETENTION_DAYS") != {"Ref": "RetentionDays"}:
    problem("the functions must get TASK_RETENTION_DAYS from RetentionDays")
for index in tasks.get("GlobalSecondaryIndexes", []):
    if index["Projection"].get("ProjectionType") == "ALL":
        problem(f"TasksTable: index {index['IndexName']} projects whole tasks; lists need the summary")

# 9. The outbox: a sweeper runs every minute, and every AWS call of a function is bounded
# well inside the function's timeout.
sweepers = [
    name for name, r in of_type("AWS::Serverless::Function").items()
    if "sweep" in json.dumps(r["Properties"].get("CodeUri", ""))
    and any(e.get("Properties", {}).get("Schedule") == "rate(1 minute)"
            for e in r["Properties"].get("Events", {}).values())
]
if not sweepers:
    problem("no outbox sweeper function scheduled every minute")
default_timeout = int(template["Globals"]["Function"].get("Timeout", 3))
default_op = env.get("AWS_OPERATION_TIMEOUT_SECS")
for name, r in of_type("AWS::Serverless::Function").items():
    p = r["Properties"]
    op = p.get("Environment", {}).get("Variables", {}).get("AWS_OPERATION_TIMEOUT_SECS", default_op)
    timeout = int(p.get("Timeout", default_timeout))
    if op is None or int(op) * 2 > timeout:
        problem(f"{name}: AWS calls bounded by {op} s; two of them must fit its {timeout} s timeout")
names = {"by-owner", "by-outbox"}
if names - {i["IndexName"] for i in tasks.get("GlobalSecondaryIndexes", [])}:
    problem(f"TasksTable: indexes {sorted(names)} are what the code queries")

# 8. Worker hosts get the runner image with retries and verify it before joining.
for name, lt in of_type("AWS::EC2::LaunchTemplate").items():
    user_data = json.dumps(lt["Properties"]["LaunchTemplateData"].get("UserData", ""))
    if "for attempt in" not in user_data:
        problem(f"{name}: the runner image is pulled without retries")
    if "codebox.agent.protocol" not in user_data:
        problem(f"{name}: the runner image is not verified (agent label)")
    if user_data.find("ECS_CLUSTER=") < user_data.find("docker pull"):
        problem(f"{name}: the instance joins the cluster before it has the runner image")
    # A host whose set-up fails must not stay: it powers off (the group replaces it) instead
    # of exiting, which leaves the ECS agent to join the `default` cluster.
    if "shutdown -h now" not in user_data or "exit 1" in user_data.replace("shutdown -h now; exit 1", ""):
        problem(f"{name}: a failed set-up exits instead of powering the instance off")

# An optional gVisor runtime on worker hosts: a parameter, installed with its checksum
# checked and registered before the host joins the cluster, and the worker told to use it.
runtime = template["Parameters"].get("SandboxRuntime", {})
if set(runtime.get("AllowedValues", [])) != {"runc", "runsc"}:
    problem("no SandboxRuntime parameter (runc | runsc)")
# Hosts shared by many tenants get a second kernel unless the operator says otherwise, and
# every host of a stack the same gVisor: a pinned release, not whatever is newest at boot.
if runtime.get("Default") != "runsc":
    problem("the SandboxRuntime default is not runsc (gVisor for multi-tenant hosts)")
release = str(template["Parameters"].get("GvisorRelease", {}).get("Default", ""))
if not re.fullmatch(r"[0-9]{8}(\.[0-9]+)?", release):
    problem(f"the GvisorRelease default {release!r} is not a pinned release")
for name, lt in of_type("AWS::EC2::LaunchTemplate").items():
    user_data = json.dumps(lt["Properties"]["LaunchTemplateData"].get("UserData", ""))
    if "sha512sum -c" not in user_data or '\\"runsc\\"' not in user_data.replace("'", '\\"'):
        problem(f"{name}: gVisor is not installed with its checksum checked and registered")
    if user_data.find("ECS_CLUSTER=") < user_data.find("sha512sum -c"):
        problem(f"{name}: the instance joins the cluster before gVisor is in place")
worker_env = {
    e["Name"]: e.get("Value")
    for r in of_type("AWS::ECS::TaskDefinition").values()
    for c in r["Properties"]["ContainerDefinitions"]
    for e in c.get("Environment", [])
}
if worker_env.get("CODEBOX_SANDBOX_RUNTIME") != {"Fn::If": ["UsesGvisor", "runsc", ""]}:
    problem("the worker is not told the SandboxRuntime (CODEBOX_SANDBOX_RUNTIME)")

# 11. Metrics in the cloud: every function and the worker write the embedded metric format.
if env.get("METRICS_FORMAT") != "emf":
    problem("the functions write no CloudWatch metrics (METRICS_FORMAT=emf in Globals)")
if worker_env.get("METRICS_FORMAT") != "emf":
    problem("the worker writes no CloudWatch metrics (METRICS_FORMAT=emf)")
# One namespace per stack, the same for functions and workers, and on the dashboard each
# metric they write (core/src/telemetry.rs: Requests, ServerErrors, Latency; Tasks).
namespace = {"Fn::Sub": "codebox/${AWS::StackName}"}
if env.get("METRICS_NAMESPACE") != namespace or worker_env.get("METRICS_NAMESPACE") != namespace:
    problem("functions and workers must write to METRICS_NAMESPACE codebox/${AWS::StackName}")
for name, d in of_type("AWS::CloudWatch::Dashboard").items():
    body = d["Properties"]["DashboardBody"]
    text = body["Fn::Sub"] if isinstance(body, dict) else body
    for metric in ("Requests", "ServerErrors", "Latency", "Tasks"):
        if f"{{codebox/${{AWS::StackName}}," not in text or f'MetricName=\\"{metric}\\"' not in text:
            problem(f"{name}: the {metric} metric the code writes is not on the dashboard")

# 12. Capacity (AWS issue 21): the workers' path cannot be starved, sign-ups are sized for
# bcrypt, scaling counts the tasks being run, deployments at peak have hosts, queued work
# outlives an outage, and the hosts' AMI can be pinned.
params = template["Parameters"]
functions = of_type("AWS::Serverless::Function")
commit = functions.get("CommitFunction", {}).get("Properties", {})
if "CommitReservedConcurrency" not in json.dumps(commit.get("ReservedConcurrentExecutions")):
    problem("CommitFunction: no reserved concurrency (CommitReservedConcurrency)")
for name in ("RegisterFunction", "LoginFunction"):
    if int(functions.get(name, {}).get("Properties", {}).get("MemorySize", 0)) < 1024:
        problem(f"{name}: bcrypt needs the CPU of at least 1024 MB")
for name, policy in of_type("AWS::ApplicationAutoScaling::ScalingPolicy").items():
    if "ApproximateNumberOfMessagesNotVisible" not in json.dumps(policy):
        problem(f"{name}: scaling counts only waiting tasks, so busy workers can be stopped")
for name, group in of_type("AWS::AutoScaling::AutoScalingGroup").items():
    if group["Properties"].get("MaxSize") != {"Ref": "WorkerMaxHosts"}:
        problem(f"{name}: MaxSize is not WorkerMaxHosts")
if int(params.get("WorkerMaxHosts", {}).get("Default", 0)) < 2 * int(params["WorkerMaxInstances"]["Default"]):
    problem("WorkerMaxHosts must default to at least twice WorkerMaxInstances (200 % deployments)")
queue = of_type("AWS::SQS::Queue").get("TaskQueue", {}).get("Properties", {})
if int(queue.get("MessageRetentionPeriod", 0)) < 7 * 86400:
    problem("TaskQueue: queued tasks must be kept through a long outage (retention)")
for name, lt in of_type("AWS::EC2::LaunchTemplate").items():
    if "WorkerAmiId" not in json.dumps(lt["Properties"]["LaunchTemplateData"].get("ImageId")):
        problem(f"{name}: the AMI cannot be pinned (WorkerAmiId)")

# 13. Webhooks (Judge0 parity, issue 20): commit hands each ended task's webhook to a
# queue and answers its worker; a function fed by that queue makes the call with every try
# (5 s each, 3 tries, pauses of 0.5 s and 1 s: 16.5 s), a failed read handed again alone.
CALL_SECS = 5 * 3 + 0.5 + 1
commit_env = commit.get("Environment", {}).get("Variables", {})
hand_on = commit_env.get("WEBHOOK_QUEUE_URL", {}).get("Ref") if isinstance(commit_env.get("WEBHOOK_QUEUE_URL"), dict) else None
if hand_on not in of_type("AWS::SQS::Queue"):
    problem("CommitFunction: WEBHOOK_QUEUE_URL names no queue of the stack")
elif {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": [hand_on, "QueueName"]}}} not in commit.get("Policies", []):
    problem(f"CommitFunction: may not send to {hand_on}")
else:
    fed = [
        (name, r["Properties"], e["Properties"])
        for name, r in functions.items()
        for e in r["Properties"].get("Events", {}).values()
        if e.get("Type") == "SQS" and e.get("Properties", {}).get("Queue") == {"Fn::GetAtt": [hand_on, "Arn"]}
    ]
    if not fed:
        problem(f"{hand_on}: no function is fed by the webhook queue")
    for name, props, source in fed:
        timeout = int(props.get("Timeout", default_timeout))
        if timeout < CALL_SECS:
            problem(f"{name}: a {timeout} s timeout cuts a call's tries ({CALL_SECS} s)")
        if "ReportBatchItemFailures" not in source.get("FunctionResponseTypes", []):
            problem(f"{name}: one failed message hands its whole batch again (ReportBatchItemFailures)")
        visibility = int(of_type("AWS::SQS::Queue")[hand_on]["Properties"].get("VisibilityTimeout", 30))
        if visibility < 6 * timeout:
            problem(f"{hand_on}: visibility {visibility} s, under six times {name}'s timeout")

# 14. Images of the stack's architecture, from any build machine: `make images` builds
# both for linux/ARCH and checks what it pushed; their Rust is cross-compiled on the build
# machine's own platform (never compiled under emulation); `make deploy` hands the stack
# the images of the same registry and tag.
top = os.path.dirname(os.path.abspath(sys.argv[2]))
images = re.search(r"^images:.*?(?=^\S|\Z)", makefile, re.S | re.M)
if not images or "scripts/build-images.sh $(ARCH)" not in images.group(0):
    problem("make images must build the images for $(ARCH) (scripts/build-images.sh)")
script = open(os.path.join(top, "scripts/build-images.sh"), encoding="utf-8").read()
for needed, why in [
    ('--platform "$platform"', "build each image for the stack's platform"),
    ("arm64) platform=linux/arm64", "map arm64 to linux/arm64"),
    ("x86_64) platform=linux/amd64", "map x86_64 to linux/amd64"),
    ("{{.Architecture}}", "check the pushed images' architecture"),
]:
    if script.count(needed) < (2 if needed.startswith("--platform") else 1):
        problem(f"scripts/build-images.sh must {why}")
for dockerfile in ["worker/Dockerfile", "worker/runner/Dockerfile"]:
    text = open(os.path.join(top, dockerfile), encoding="utf-8").read()
    for stage in re.split(r"^(?=FROM )", text, flags=re.M)[1:]:
        compiles = "cargo " in stage or "cross-build.sh" in stage
        if compiles and not stage.startswith("FROM --platform=$BUILDPLATFORM "):
            problem(f"{dockerfile}: a Rust stage must run on the build machine's platform ($BUILDPLATFORM)")
        if compiles and "scripts/cross-build.sh \"$TARGETARCH\"" not in stage:
            problem(f"{dockerfile}: a Rust stage must cross-compile for $TARGETARCH (scripts/cross-build.sh)")
if not deploy or "WorkerImageUri=$(REGISTRY)/codebox-worker:$(IMAGE_TAG)" not in deploy.group(0) \
        or "RunnerImageUri=$(REGISTRY)/codebox-runner:$(IMAGE_TAG)" not in deploy.group(0):
    problem("make deploy must hand the stack the images make images pushed (REGISTRY, IMAGE_TAG)")
if not re.search(r"^ARCH \?= \$\(or \$\(LAMBDA_ARCH\),", makefile, re.M):
    problem("LAMBDA_ARCH must set ARCH too (make lambda-build LAMBDA_ARCH=x86_64)")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
