//! The `wasmgate` command as an operator runs it.

use std::process::Command;

use wasmgate_testbed::plugins::{ADD_HEADER, FIXTURE_BAD_CONFIG, FIXTURE_SLEEPER};

fn check(toml: &str) -> (bool, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, toml).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_wasmgate")).arg("check").arg(&path).env("RUST_LOG", "off").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn check_accepts_a_good_config() {
    let (ok, stdout, stderr, file) = check(&format!(
        "[upstreams.u]\ntargets = [\"127.0.0.1:9\"]\n[plugins.h]\npath = \"{ADD_HEADER}\"\n[[routes]]\nname = \"r\"\npath = \"/\"\nupstream = \"u\"\npipeline = [{{ plugin = \"h\" }}]\n"
    ));
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("{file}: ok (1 routes, 1 plugins, 1 upstreams)\n  plugin h (config): {ADD_HEADER}")
    );
}

#[test]
fn check_lists_the_plugins_found_and_where_each_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for name in ["hdr", "spare"] {
        std::fs::copy(ADD_HEADER, plugins.join(format!("{name}.wasm"))).unwrap();
    }
    let path = dir.path().join("gw.toml");
    let toml = format!(
        "plugins_dir = \"plugins\"\n[plugins.hdr]\nconfig = {{ request = {{ x-a = \"1\" }} }}\n\
         [plugins.own]\npath = \"{ADD_HEADER}\"\n\
         [[routes]]\nname = \"r\"\npath = \"/\"\npipeline = [{{ plugin = \"hdr\" }}, {{ plugin = \"own\" }}]\n"
    );
    std::fs::write(&path, toml).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_wasmgate")).arg("check").arg(&path).env("RUST_LOG", "off").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let expected = [
        format!("{}: ok (1 routes, 3 plugins, 0 upstreams)", path.display()),
        format!("plugins_dir: {}", plugins.display()),
        format!("  plugin hdr (plugins_dir+config): {}", plugins.join("hdr.wasm").display()),
        format!("  plugin own (config): {ADD_HEADER}"),
        format!("  plugin spare (plugins_dir): {}", plugins.join("spare.wasm").display()),
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected, "{stdout}");
}

#[test]
fn check_fails_with_the_plugins_own_message() {
    let (ok, _, stderr, file) = check(&format!(
        "[plugins.strict]\npath = \"{FIXTURE_BAD_CONFIG}\"\n[[routes]]\nname = \"r\"\npath = \"/\"\npipeline = [{{ plugin = \"strict\" }}]\n"
    ));
    assert!(!ok);
    assert!(
        stderr.starts_with(&format!(
            "{file}:6:13: routes[0].pipeline[0]: route \"r\": plugin strict rejected its config: "
        )),
        "{stderr}"
    );
    assert!(stderr.contains("bad-config fixture rejects every config"), "{stderr}");
}

#[test]
fn check_fails_when_a_plugin_never_finishes_configuring() {
    // It sleeps for an hour; `check` gives up at the plugin's deadline.
    let (ok, _, stderr, file) = check(&format!(
        "[plugins.sleeper]\npath = \"{FIXTURE_SLEEPER}\"\nconfigure_timeout_ms = 200\n[[routes]]\nname = \"slow\"\npath = \"/\"\npipeline = [{{ plugin = \"sleeper\", config = {{ configure_sleep_ms = 3600000 }} }}]\n"
    ));
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        format!(
            "{file}:7:13: routes[0].pipeline[0]: route \"slow\": plugin sleeper did not finish configuring within 200 ms"
        )
    );
}

#[test]
fn check_reports_every_error_on_its_own_line() {
    let (ok, _, stderr, file) =
        check("[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"x\"\n[[routes]]\nname = \"b\"\n");
    assert!(!ok);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("{file}:4:12: routes[0].upstream: unknown upstream \"x\" (defined: none)"),
            format!("{file}:6:8: routes[1]: a route needs a path or a prefix"),
            format!("{file}:6:8: routes[1]: a route without an upstream needs a plugin in its pipeline to answer"),
        ]
    );
}

/// Compiles run in a child process of the binary: a file that is no
/// component fails there, and its reason reaches the operator once, with
/// the place in the config.
#[test]
fn check_names_a_file_that_is_no_component() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0 not really").unwrap();
    let (ok, _, stderr, file) = check(&format!(
        "[plugins.junk]\npath = \"{}\"\n[[routes]]\nname = \"r\"\npath = \"/\"\npipeline = [{{ plugin = \"junk\" }}]\n",
        junk.display()
    ));
    assert!(!ok);
    let line = stderr.lines().next().unwrap_or_default();
    assert!(
        line.starts_with(&format!("{file}:2:8: plugins.junk.path: {} is not a valid wasm component: ", junk.display())),
        "{stderr}"
    );
    assert_eq!(stderr.matches("is not a valid wasm component").count(), 1, "{stderr}");
}
