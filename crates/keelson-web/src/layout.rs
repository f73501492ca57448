//! The page shell every server-rendered page shares.

use crate::CurrentUser;
use maud::{DOCTYPE, Markup, html};

/// What the shell needs to know about the site.
#[derive(Debug, Clone)]
pub struct Site {
    /// Shown as the brand, for example `Keelson · MV Demo`.
    pub title: String,
    /// Navigation links: (href, label).
    pub nav: Vec<(&'static str, &'static str)>,
}

/// A full page: header with navigation and the user, then `body`.
pub fn page(site: &Site, title: &str, user: Option<&CurrentUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (site.title) }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                header.top {
                    a.brand href="/" { (site.title) }
                    @if user.is_some() {
                        nav {
                            @for (href, label) in &site.nav {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    @if let Some(u) = user {
                        span.who { (u.username) " (" (u.role.replace('_', " ")) ")" }
                        form method="post" action="/logout" {
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login form, with an optional error line.
pub fn login_page(site: &Site, error: Option<&str>) -> Markup {
    page(
        site,
        "Log in",
        None,
        html! {
            div.login.card {
                h1 { "Log in" }
                @if let Some(e) = error {
                    p.flash.error role="alert" { (e) }
                }
                form.stack method="post" action="/login" {
                    label { "User name" input name="username" autocomplete="username" required autofocus; }
                    label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                    button type="submit" { "Log in" }
                }
            }
        },
    )
}

/// A simple page that explains an error to a person.
pub fn error_page(site: &Site, user: Option<&CurrentUser>, status: u16, message: &str) -> Markup {
    page(
        site,
        "Error",
        user,
        html! {
            div.card {
                h1 { "Something is not right (" (status) ")" }
                p { (message) }
                p { a href="/" { "Back to the start page" } }
            }
        },
    )
}

/// A timestamp as the UI shows it: UTC, to the minute.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An optional RFC 3339 timestamp as the UI shows it, or `never`.
pub fn when_rfc3339(t: Option<&str>) -> String {
    match t.map(chrono::DateTime::parse_from_rfc3339) {
        None => "never".into(),
        Some(Ok(t)) => when(t.with_timezone(&chrono::Utc)),
        Some(Err(_)) => "unknown".into(),
    }
}

/// A byte count as a person reads it: `0 B`, `12.3 kB`, `4.5 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A duration in seconds as a person reads it: `45 s`, `12 min`, `3 h 20 min`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs.div_ceil(60)),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_sizes_and_durations() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(12_345), "12.3 kB");
        assert_eq!(human_bytes(4_500_000), "4.5 MB");
        assert_eq!(human_duration(45), "45 s");
        assert_eq!(human_duration(61), "2 min");
        assert_eq!(human_duration(3 * 3600 + 20 * 60), "3 h 20 min");
    }
}
