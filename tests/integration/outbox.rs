//! End to end on the file outbox: a code email and an alert land as .eml files.

use std::ffi::CString;

use breakglass::ffi::bg_status::*;
use breakglass::ffi::delivery;

use super::{configure, generate, serial, verify};

#[test]
fn code_and_alert_reach_the_file_outbox() {
    let _g = serial();
    let dir = std::env::temp_dir().join(format!("bg-outbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("file://{}", dir.display());
    assert_eq!(configure("mailer", Some(&url)), BG_OK);
    assert_eq!(
        configure("from_email", Some("Break Glass <bg@example.com>")),
        BG_OK
    );
    assert_eq!(configure("otp_email", Some("admin@example.com")), BG_OK);
    assert_eq!(
        configure("alert_emails", Some("ops@example.com, sec@example.com")),
        BG_OK
    );

    let before = breakglass::stats();
    let code = generate();
    let c = CString::new(code.clone()).unwrap();
    assert_eq!(unsafe { delivery::bg_send_otp(c.as_ptr()) }, BG_OK);
    assert_eq!(verify(&code), BG_OK);
    assert_eq!(
        unsafe { delivery::bg_alert(c"192.0.2.1\r\nBcc: x@evil.example".as_ptr()) },
        BG_OK
    );
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    let after = breakglass::stats();
    assert_eq!(after.emails_sent - before.emails_sent, 3);
    assert_eq!(after.queued - before.queued, 2);

    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|t| !t.is_empty())
        .collect();
    let mails: Vec<&String> = files.iter().filter(|t| t.contains("Subject:")).collect();
    assert_eq!(mails.len(), 3, "{files:?}");
    let otp: Vec<_> = mails.iter().filter(|m| m.contains(&code)).collect();
    assert_eq!(otp.len(), 1);
    assert!(otp[0].contains("To: admin@example.com"));
    let alerts: Vec<_> = mails
        .iter()
        .filter(|m| m.contains("[BREAK-GLASS]"))
        .collect();
    assert_eq!(alerts.len(), 2);
    for a in alerts {
        let headers = a.split("\r\n\r\n").next().unwrap();
        assert!(
            !headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
        assert!(a.contains("192.0.2.1\\u{d}\\u{a}Bcc"), "{a}");
        assert!(!a.contains(&code));
    }
    for key in ["mailer", "from_email", "otp_email", "alert_emails"] {
        assert_eq!(configure(key, None), BG_OK);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
