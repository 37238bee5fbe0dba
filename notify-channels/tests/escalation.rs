//! Escalation end to end against real parts: mailpit (SMTP, and SMTPS with a private CA)
//! receives the e-mails, a real HTTP receiver verifies the webhook signatures, and the
//! schedule lives in the memory store or in MongoDB/FerretDB. Two instances and a restart
//! send each escalation exactly once.
//!
//! Needs `NOTIFY_TEST_SMTP` and `NOTIFY_TEST_MAILPIT_API` (and for the MongoDB case
//! `NOTIFY_TEST_MONGO`, `NOTIFY_TEST_SMTPS`, `NOTIFY_TEST_MAILPIT_TLS_API`,
//! `NOTIFY_TEST_SMTP_CA`), as written by `scripts/mailpit.sh` and `scripts/ferretdb.sh`;
//! skips otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes as Body;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{Timelike, Utc};
use notify_channels::{
    signature, EmailChannel, Lang, MemoryDeadLetters, SmtpSettings, WebhookChannel, WebhookConfig,
};
use notify_core::auth::{Authenticator, Principal};
use notify_core::escalation::{Channel, Escalator, EscalatorConfig, EscalatorHandle};
use notify_core::prefs::{Escalation, EscalationKind};
use notify_core::{
    MemoryPreferences, MemoryPublisher, MemorySource, MemoryStore, NotificationStore,
    NotifyService, Pipeline, PipelineHandle, PreferenceStore,
};
use parking_lot::Mutex;
use serde_json::{json, Value};

const SECRET: &[u8] = b"webhook-test-secret";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn unique(tag: &str) -> String {
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros() % 1_000_000_000
    )
}

/// A webhook receiver that verifies every signature.
#[derive(Default)]
struct Receiver {
    /// (X-Notify-Delivery, body) of every correctly signed POST.
    got: Mutex<Vec<(String, Value)>>,
    bad: Mutex<u32>,
}

async fn start_receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver::default());
    let r = receiver.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Body| {
            let r = r.clone();
            async move {
                let sig = headers
                    .get(signature::HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !signature::verify(SECRET, &body, sig) {
                    *r.bad.lock() += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                let key = headers
                    .get("x-notify-delivery")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let v: Value = serde_json::from_slice(&body).expect("JSON body");
                r.got.lock().push((key, v));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, format!("http://{addr}/hook"))
}

impl Receiver {
    fn for_user(&self, user: &str) -> Vec<(String, Value)> {
        self.got
            .lock()
            .iter()
            .filter(|(_, v)| v["user"] == user)
            .cloned()
            .collect()
    }
}

/// Messages mailpit holds for `to`.
async fn mails_to(api: &str, to: &str) -> Vec<Value> {
    let v = json_of(
        reqwest::get(format!("{api}/api/v1/messages?limit=1000"))
            .await
            .expect("mailpit API"),
    )
    .await;
    v["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m["To"]
                .as_array()
                .is_some_and(|t| t.iter().any(|a| a["Address"] == to))
        })
        .collect()
}

async fn json_of(r: reqwest::Response) -> Value {
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON")
}

fn channels(smtp: &SmtpSettings, hook: &str) -> Vec<Arc<dyn Channel>> {
    vec![
        Arc::new(
            EmailChannel::new(
                smtp,
                "Notify <notify@example.com>",
                Lang::Ko,
                "https://app.example.com",
            )
            .unwrap(),
        ),
        Arc::new(
            WebhookChannel::new(
                hook,
                SECRET,
                WebhookConfig {
                    first_backoff: Duration::from_millis(50),
                    ..WebhookConfig::default()
                },
                Arc::new(MemoryDeadLetters::new()),
            )
            .unwrap(),
        ),
    ]
}

struct Instance {
    service: Arc<NotifyService>,
    publisher: MemoryPublisher,
    pipeline: PipelineHandle,
    escalator: Option<EscalatorHandle>,
}

fn instance(
    store: Arc<dyn NotificationStore>,
    prefs: Arc<dyn PreferenceStore>,
    channels: Option<Vec<Arc<dyn Channel>>>,
    name: &str,
) -> Instance {
    let (source, publisher) = MemorySource::new(1024);
    let source = Arc::new(source);
    let service = NotifyService::builder(store, Arc::new(publisher.clone()), auth())
        .event_source(source.clone())
        .preferences(prefs)
        .escalation(true)
        .build();
    let pipeline = Pipeline::new(service.clone(), source).spawn();
    let escalator = channels.map(|channels| {
        Escalator::new(
            service.clone(),
            channels,
            EscalatorConfig {
                instance: name.into(),
                poll: Duration::from_millis(100),
                ..EscalatorConfig::default()
            },
        )
        .spawn()
    });
    Instance {
        service,
        publisher,
        pipeline,
        escalator,
    }
}

impl Instance {
    async fn stop(self) {
        if let Some(e) = self.escalator {
            e.shutdown(Duration::from_secs(2)).await;
        }
        self.pipeline.shutdown(Duration::from_secs(2)).await;
    }

    async fn publish(&self, event: Value) {
        self.publisher
            .send_raw(serde_json::to_vec(&event).unwrap().into())
            .await
            .unwrap();
    }
}

fn auth() -> Authenticator {
    Authenticator::hs256(b"escalation-test-secret-of-32-bytes!!")
}

fn principal(user: &str, email: &str, groups: &[&str]) -> Principal {
    Principal {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        email: Some(email.into()),
    }
}

async fn set_prefs(service: &NotifyService, p: &Principal, prefs: Value) {
    notify_core::prefs::rest::put(service, p, prefs.to_string().as_bytes())
        .await
        .expect("valid preferences");
}

fn event(id: &str, user: &str, kind: &str, priority: &str) -> Value {
    json!({
        "id": id, "type": kind, "priority": priority,
        "recipients": {"users": [user]},
        "title": format!("title {id}"), "message": format!("message {id}"),
        "link": format!("/things/{id}"),
    })
}

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn stored(
    store: Arc<dyn NotificationStore>,
    user: String,
    groups: Vec<String>,
    n: usize,
) -> bool {
    let reader = notify_core::store::Reader::new(user, groups);
    store
        .list(
            &reader,
            &notify_core::store::ListQuery {
                page: notify_core::store::Page::NewestBefore(None),
                limit: 200,
                unread_only: false,
            },
        )
        .await
        .map(|v| v.len() >= n)
        .unwrap_or(false)
}

/// What the memory-store tests share: mailpit, a webhook receiver, and one memory store and
/// preference store for all their instances.
struct Setup {
    /// Mailpit's HTTP API.
    api: String,
    smtp: SmtpSettings,
    receiver: Arc<Receiver>,
    /// The receiver's URL.
    hook: String,
    store: Arc<dyn NotificationStore>,
    prefs: Arc<dyn PreferenceStore>,
}

/// The shared setup, or `None` (the test skips) without mailpit.
async fn setup() -> Option<Setup> {
    let (Some(smtp), Some(api)) = (env("NOTIFY_TEST_SMTP"), env("NOTIFY_TEST_MAILPIT_API")) else {
        println!("skipping: NOTIFY_TEST_SMTP / NOTIFY_TEST_MAILPIT_API not set");
        return None;
    };
    let smtp = SmtpSettings::parse(&smtp).unwrap();
    let (receiver, hook) = start_receiver().await;
    Some(Setup {
        api,
        smtp,
        receiver,
        hook,
        store: Arc::new(MemoryStore::new()),
        prefs: Arc::new(MemoryPreferences::new()),
    })
}

impl Setup {
    /// An instance on the shared stores that escalates by e-mail and webhook.
    fn instance(&self, name: &str) -> Instance {
        instance(
            self.store.clone(),
            self.prefs.clone(),
            Some(channels(&self.smtp, &self.hook)),
            name,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_two_instances_read_cancels_priority_and_mutes() {
    let Some(setup) = setup().await else { return };
    let a = setup.instance("a");
    let b = setup.instance("b");

    let user = unique("ann");
    let group = unique("ops");
    let email = format!("{user}@example.com");
    let p = principal(&user, &email, &[&group]);
    set_prefs(
        &a.service,
        &p,
        json!({"muted_types": ["marketing.*"],
               "email": {"enabled": true, "min_priority": "normal", "after_s": 2}}),
    )
    .await;
    // Escalated: 4 personal high/normal ones and one for the user's group.
    for i in 0..4 {
        a.publish(event(
            &format!("{user}-e{i}"),
            &user,
            "purchase.approved",
            "high",
        ))
        .await;
    }
    a.publish(
        json!({"id": format!("{user}-g"), "type": "purchase.requested", "priority": "high",
        "recipients": {"groups": [group]}, "title": "group title", "message": "group message"}),
    )
    .await;
    // Not escalated: read first, below min_priority, muted.
    a.publish(event(
        &format!("{user}-read"),
        &user,
        "purchase.approved",
        "high",
    ))
    .await;
    a.publish(event(
        &format!("{user}-low"),
        &user,
        "purchase.approved",
        "low",
    ))
    .await;
    a.publish(event(
        &format!("{user}-mkt"),
        &user,
        "marketing.spring",
        "high",
    ))
    .await;
    eventually("stored", Duration::from_secs(5), || {
        stored(setup.store.clone(), user.clone(), vec![group.clone()], 8)
    })
    .await;
    let read_id = notify_core::model::notification_id(
        &format!("{user}-read"),
        &notify_core::Audience::User(user.clone()),
    );
    let reader = notify_core::store::Reader::new(user.clone(), vec![group.clone()]);
    assert_eq!(
        setup
            .store
            .mark_read(&reader, &[read_id])
            .await
            .unwrap()
            .len(),
        1
    );
    // Muted types are neither listed nor counted; the count stays exact.
    let page = notify_core::inbox::list(
        &a.service,
        &reader,
        &notify_core::inbox::parse_list_query(None).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(page.items.len(), 7, "the marketing one is not listed");
    assert_eq!(page.unread_count, 6, "7 visible, 1 read");

    eventually(
        "5 e-mails and 5 webhooks",
        Duration::from_secs(20),
        || async {
            mails_to(&setup.api, &email).await.len() >= 5
                && setup.receiver.for_user(&user).len() >= 5
        },
    )
    .await;
    // Give a duplicate the chance to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = mails_to(&setup.api, &email).await;
    let mut subjects: Vec<String> = mails
        .iter()
        .map(|m| m["Subject"].as_str().unwrap_or("").to_string())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects.len(),
        5,
        "each escalation e-mailed once: {subjects:?}"
    );
    subjects.dedup();
    assert_eq!(subjects.len(), 5, "no duplicates: {subjects:?}");
    assert!(
        subjects.iter().all(|s| s.starts_with("[읽지 않은 알림]")),
        "{subjects:?}"
    );
    assert!(!subjects
        .iter()
        .any(|s| s.contains("-read") || s.contains("-low") || s.contains("-mkt")));
    let hooks = setup.receiver.for_user(&user);
    assert_eq!(hooks.len(), 5, "each escalation POSTed once");
    let mut keys: Vec<&String> = hooks.iter().map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5);
    for (_, body) in &hooks {
        assert_eq!(body["reason"], "unread");
        assert_eq!(body["notifications"].as_array().unwrap().len(), 1);
    }
    assert_eq!(*setup.receiver.bad.lock(), 0);
    // The e-mail has the message and the absolute link.
    let id = mails[0]["ID"].as_str().unwrap();
    let full = json_of(
        reqwest::get(format!("{}/api/v1/message/{id}", setup.api))
            .await
            .unwrap(),
    )
    .await;
    let text = full["Text"].as_str().unwrap_or("");
    assert!(text.contains("https://app.example.com/"), "{text}");
    assert!(text.contains("message"), "{text}");
    assert_eq!(setup.prefs.pending_escalations().await.unwrap(), 0);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_quiet_hours_defer_and_digest() {
    let Some(setup) = setup().await else { return };
    let a = setup.instance("a");

    // Quiet now (UTC): from an hour ago to an hour ahead.
    let now = Utc::now();
    let hm = |t: chrono::DateTime<Utc>| format!("{:02}:{:02}", t.hour(), t.minute());
    let quiet_user = unique("quiet");
    let quiet_mail = format!("{quiet_user}@example.com");
    set_prefs(
        &a.service,
        &principal(&quiet_user, &quiet_mail, &[]),
        json!({"tz": "UTC",
               "quiet_hours": {"from": hm(now - chrono::Duration::hours(1)), "to": hm(now + chrono::Duration::hours(1))},
               "email": {"enabled": true, "min_priority": "low", "after_s": 0}}),
    )
    .await;
    a.publish(event(
        &format!("{quiet_user}-q"),
        &quiet_user,
        "x.y",
        "high",
    ))
    .await;

    // Digest: one user, two unread, the digest made due now.
    let digest_user = unique("digest");
    let digest_mail = format!("{digest_user}@example.com");
    set_prefs(
        &a.service,
        &principal(&digest_user, &digest_mail, &[]),
        json!({"digest": {"enabled": true, "at": "09:00"}}),
    )
    .await;
    for i in 0..2 {
        a.publish(event(
            &format!("{digest_user}-{i}"),
            &digest_user,
            "x.y",
            "normal",
        ))
        .await;
    }
    eventually("stored", Duration::from_secs(5), || {
        stored(setup.store.clone(), digest_user.clone(), vec![], 2)
    })
    .await;
    setup
        .prefs
        .set_digest(
            &digest_user,
            Some(Escalation {
                id: Escalation::digest_id(&digest_user, "test"),
                user: digest_user.clone(),
                kind: EscalationKind::Digest,
                due_at: Utc::now(),
                attempted: Vec::new(),
            }),
        )
        .await
        .unwrap();
    eventually("the digest", Duration::from_secs(15), || async {
        !mails_to(&setup.api, &digest_mail).await.is_empty()
            && !setup.receiver.for_user(&digest_user).is_empty()
    })
    .await;
    let mails = mails_to(&setup.api, &digest_mail).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["Subject"], "[알림 요약] 읽지 않은 알림 2건");
    let hooks = setup.receiver.for_user(&digest_user);
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].1["reason"], "digest");
    assert_eq!(hooks[0].1["notifications"].as_array().unwrap().len(), 2);

    // The quiet user's escalation waits for the end of the quiet hours; the next digest
    // is scheduled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        mails_to(&setup.api, &quiet_mail).await.is_empty(),
        "nothing in quiet hours"
    );
    assert!(setup.receiver.for_user(&quiet_user).is_empty());
    assert_eq!(
        setup.prefs.pending_escalations().await.unwrap(),
        2,
        "deferred + tomorrow's digest"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_restart_and_two_instances_send_once_over_smtps() {
    let (Some(mongo), Some(smtps), Some(api), Some(ca)) = (
        env("NOTIFY_TEST_MONGO"),
        env("NOTIFY_TEST_SMTPS"),
        env("NOTIFY_TEST_MAILPIT_TLS_API"),
        env("NOTIFY_TEST_SMTP_CA"),
    ) else {
        println!("skipping: NOTIFY_TEST_MONGO / NOTIFY_TEST_SMTPS / NOTIFY_TEST_MAILPIT_TLS_API / NOTIFY_TEST_SMTP_CA not set");
        return;
    };
    let mut smtp = SmtpSettings::parse(&smtps).unwrap();
    assert!(smtp.credentials.is_some());
    assert!(smtp.implicit_tls);
    smtp.root_pem = Some(std::fs::read(ca).unwrap());
    let (receiver, hook) = start_receiver().await;
    let db = unique("nt_esc").replace('-', "_");
    let connect = || async {
        let store = notify_mongo::MongoStore::connect(&mongo, &db)
            .await
            .unwrap();
        let prefs = notify_mongo::MongoPreferences::new(&store).await.unwrap();
        (
            Arc::new(store) as Arc<dyn NotificationStore>,
            Arc::new(prefs) as Arc<dyn PreferenceStore>,
        )
    };

    // Instance A stores and schedules, then stops before anything is due.
    let (store, prefs) = connect().await;
    let a = instance(
        store.clone(),
        prefs.clone(),
        Some(channels(&smtp, &hook)),
        "a",
    );
    let user = unique("mia");
    let email = format!("{user}@example.com");
    set_prefs(
        &a.service,
        &principal(&user, &email, &[]),
        json!({"email": {"enabled": true, "min_priority": "high", "after_s": 4}}),
    )
    .await;
    for i in 0..5 {
        a.publish(event(
            &format!("{user}-{i}"),
            &user,
            "purchase.approved",
            "high",
        ))
        .await;
    }
    eventually("stored and scheduled", Duration::from_secs(10), || async {
        prefs.pending_escalations().await.unwrap_or(0) == 5
    })
    .await;
    a.stop().await;
    drop((store, prefs));

    // After the "restart": two new instances on the same database share the work.
    let (store1, prefs1) = connect().await;
    let (store2, prefs2) = connect().await;
    let b1 = instance(store1, prefs1.clone(), Some(channels(&smtp, &hook)), "b1");
    let b2 = instance(store2, prefs2, Some(channels(&smtp, &hook)), "b2");
    eventually(
        "5 e-mails and 5 webhooks",
        Duration::from_secs(30),
        || async { mails_to(&api, &email).await.len() >= 5 && receiver.for_user(&user).len() >= 5 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = mails_to(&api, &email).await;
    let mut subjects: HashMap<String, usize> = HashMap::new();
    for m in &mails {
        *subjects
            .entry(m["Subject"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert_eq!(mails.len(), 5, "each escalation once: {subjects:?}");
    assert!(subjects.values().all(|n| *n == 1), "{subjects:?}");
    assert_eq!(receiver.for_user(&user).len(), 5);
    assert_eq!(*receiver.bad.lock(), 0);
    assert_eq!(prefs1.pending_escalations().await.unwrap(), 0);
    b1.stop().await;
    b2.stop().await;
    let client = notify_mongo::mongodb::Client::with_uri_str(&mongo)
        .await
        .unwrap();
    let _ = client.database(&db).drop().await;
}

/// One e-mail over implicit TLS to a server whose certificate a private CA signed: sent when
/// the CA is trusted (`root_pem`), refused (TLS error, nothing delivered) when it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtps_with_a_private_ca() {
    let (Some(smtps), Some(api), Some(ca)) = (
        env("NOTIFY_TEST_SMTPS"),
        env("NOTIFY_TEST_MAILPIT_TLS_API"),
        env("NOTIFY_TEST_SMTP_CA"),
    ) else {
        println!("skipping: NOTIFY_TEST_SMTPS / NOTIFY_TEST_MAILPIT_TLS_API / NOTIFY_TEST_SMTP_CA not set");
        return;
    };
    let user = unique("tls");
    let email = format!("{user}@example.com");
    let delivery = |key: &str| notify_core::escalation::Delivery {
        user: user.clone(),
        email: Some(email.clone()),
        reason: notify_core::escalation::Reason::Digest,
        notifications: Vec::new(),
        tz: chrono_tz::UTC,
        key: key.to_string(),
    };
    let mut smtp = SmtpSettings::parse(&smtps).unwrap();
    assert!(smtp.implicit_tls);
    let untrusted =
        EmailChannel::new(&smtp, "notify@example.com", Lang::En, "https://a.example").unwrap();
    let started = Instant::now();
    let err = untrusted
        .send(&delivery("untrusted"))
        .await
        .expect_err("a server certificate from an untrusted CA is refused");
    println!(
        "untrusted CA refused after {:?}: {err:?}",
        started.elapsed()
    );
    smtp.root_pem = Some(std::fs::read(ca).unwrap());
    let trusted =
        EmailChannel::new(&smtp, "notify@example.com", Lang::En, "https://a.example").unwrap();
    tokio::time::timeout(Duration::from_secs(20), trusted.send(&delivery("trusted")))
        .await
        .expect("sent within 20 s")
        .expect("sent over SMTPS with the private CA");
    eventually("the mail in mailpit", Duration::from_secs(10), || async {
        mails_to(&api, &email).await.len() == 1
    })
    .await;
}
