//! Text from a third-party profile reaches the page only escaped: a description, a source
//! title, a citation reference and a URL that try to open tags, scripts or links stay text.

use portolan_report::{render, Overlays};
use portolan_testkit::Profiles;

const EVIL: &str = r#"</td></tr></table><script>alert(1)</script><img src="http://evil.example/x.png"></svg><a href='https://evil.example/'>x</a> & "q" 'a'"#;

fn yq(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[test]
fn profile_text_cannot_add_markup() {
    let e = yq(EVIL);
    let profile = format!(
        "portolan: 1\nid: acme-sensor\nvendor: {e}\nproduct: {e}\ndescription: {e}\nsources:\n  - id: doc\n    title: {e}\n    url: {u}\nendpoints:\n  - id: server\n    role: true\n    description: {e}\nflows:\n  - id: telemetry\n    from: device\n    to: server\n    initiation: device\n    protocol: tcp\n    ports: 8443\n    description: {e}\n    app: {e}\n    source: {{doc: doc, ref: {e}}}\nlistens: none\n",
        u = yq("https://evil.example/\"><script>alert(2)</script>")
    );
    let profiles = Profiles::catalog().with_text("acme-sensor", &profile);
    let site = "portolan: 1\nsite: t\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.1.0.0/24]\n  - id: wan\n    interface: wan0\ndevices:\n  - id: d\n    profile: acme-sensor\n    zone: field\n    addresses: [10.1.0.5]\n    bind:\n      server: [198.51.100.7]\n";
    let policy = profiles.compile("t.yaml", site);
    let html = render(&policy, &Overlays::default()).expect("render").html;
    // The page's own markup: one script (the filter), one svg, no img, no link out.
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert_eq!(html.matches("</script>").count(), 1);
    assert_eq!(html.matches("<svg").count(), 1);
    assert_eq!(html.matches("</svg>").count(), 1);
    assert!(!html.contains("<img"));
    assert!(!html.contains("href='https"));
    assert!(!html.contains("href=\"http"));
    // The text is still there, escaped (minijinja escapes < > & " ' and /).
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    assert!(html.contains("&amp; &quot;q&quot; &#x27;a&#x27;"));
}
