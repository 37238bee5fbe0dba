//! The e-mail template, in Korean and English: subject, plain text and HTML with the title,
//! the message and an absolute link for each notification.

use chrono::SecondsFormat;
use chrono_tz::Tz;
use notify_core::escalation::{Delivery, Reason};
use notify_core::Notification;

/// The language of e-mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Korean (한국어) subjects and bodies.
    Ko,
    /// English subjects and bodies.
    #[default]
    En,
}

impl Lang {
    /// `ko` or `en`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ko" => Some(Lang::Ko),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// A rendered e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The e-mail's subject: `[Unread]` and the notification title, or the digest's count.
    pub subject: String,
    /// text/plain part.
    pub text: String,
    /// text/html part.
    pub html: String,
}

/// Makes a link absolute: absolute `http(s)` links stay, paths are joined to `base`
/// (the service's public URL); a notification without a link points at `base`.
pub fn absolute_link(link: Option<&str>, base: &str) -> String {
    let base = base.trim_end_matches('/');
    match link {
        Some(l) if l.starts_with("http://") || l.starts_with("https://") => l.to_string(),
        Some(l) if l.starts_with('/') => format!("{base}{l}"),
        _ => format!("{base}/"),
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(n: &Notification, tz: Tz) -> String {
    n.created_at()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Renders a delivery in `lang`, with links made absolute against `base`.
pub fn render(delivery: &Delivery, lang: Lang, base: &str) -> Rendered {
    let count = delivery.notifications.len();
    let first = delivery.notifications.first();
    let subject = match (delivery.reason, lang, first) {
        (Reason::Unread, Lang::Ko, Some(n)) => format!("[읽지 않은 알림] {}", n.title),
        (Reason::Unread, Lang::En, Some(n)) => format!("[Unread] {}", n.title),
        (_, Lang::Ko, _) => format!("[알림 요약] 읽지 않은 알림 {count}건"),
        (_, Lang::En, _) => format!(
            "[Digest] {count} unread notification{}",
            if count == 1 { "" } else { "s" }
        ),
    };
    let intro = match (delivery.reason, lang) {
        (Reason::Unread, Lang::Ko) => "아직 읽지 않은 알림이 있습니다.",
        (Reason::Unread, Lang::En) => "You have a notification you have not read yet.",
        (Reason::Digest, Lang::Ko) => "읽지 않은 알림 목록입니다.",
        (Reason::Digest, Lang::En) => "Here are your unread notifications.",
    };
    let open = match lang {
        Lang::Ko => "열기",
        Lang::En => "Open",
    };
    let footer = match lang {
        Lang::Ko => "알림 설정에서 이메일 알림을 끌 수 있습니다.",
        Lang::En => "You can turn these e-mails off in your notification settings.",
    };
    let mut text = format!("{intro}\n\n");
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><body><p>{}</p><ul>",
        if lang == Lang::Ko { "ko" } else { "en" },
        escape(intro)
    );
    for n in &delivery.notifications {
        let link = absolute_link(n.link.as_deref(), base);
        text.push_str(&format!(
            "* {}\n  {}\n  {} ({})\n  {open}: {link}\n\n",
            n.title,
            n.message,
            when(n, delivery.tz),
            n.priority.as_str()
        ));
        html.push_str(&format!(
            "<li><p><strong>{}</strong><br>{}<br><small><time datetime=\"{}\">{}</time></small></p><p><a href=\"{}\">{open}</a></p></li>",
            escape(&n.title),
            escape(&n.message),
            n.created_at().to_rfc3339_opts(SecondsFormat::Secs, true),
            escape(&when(n, delivery.tz)),
            escape(&link),
        ));
    }
    text.push_str(&format!("--\n{footer}\n"));
    html.push_str(&format!(
        "</ul><p><small>{}</small></p></body></html>",
        escape(footer)
    ));
    Rendered {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_core::model::Audience;
    use notify_core::testkit::store::sample;

    #[test]
    fn links_are_absolute_and_html_escaped() {
        assert_eq!(
            absolute_link(Some("/p/1"), "https://app.example.com/"),
            "https://app.example.com/p/1"
        );
        assert_eq!(
            absolute_link(Some("https://x.example/a"), "https://app"),
            "https://x.example/a"
        );
        let mut n = sample("e1", Audience::User("ann".into()), 1_795_000_000_000_000);
        n.title = "<b>Purchase</b> approved".into();
        let d = Delivery {
            user: "ann".into(),
            email: Some("ann@example.com".into()),
            reason: Reason::Unread,
            notifications: vec![n],
            tz: "Asia/Seoul".parse().unwrap(),
            key: "k".into(),
        };
        let ko = render(&d, Lang::Ko, "https://app.example.com");
        assert_eq!(ko.subject, "[읽지 않은 알림] <b>Purchase</b> approved");
        assert!(ko.html.contains("&lt;b&gt;Purchase"));
        assert!(ko.text.contains("https://app.example.com/things/e1"));
        assert!(ko.text.contains("KST"));
        let en = render(&d, Lang::En, "https://app.example.com");
        assert!(en.subject.starts_with("[Unread]"));
    }
}
