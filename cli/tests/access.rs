//! Access to `serve` as the binary gives it (issue 14, findings 4 and 5): unsafe binds refused
//! with the named flag, the admin token read from the environment or a file, the state folder
//! and its files owner-only, and `--help` steering secrets away from flags. Loopback only: the
//! refusals come before anything is bound. (The admin side's checks themselves are tested
//! in-process: `tests/tests/attacker/`.)

use host_test::support::loopback_request;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dialpad-ghl");
const ADMIN_TOKEN: &str = "cli-access-admin-token-71c0e2aa";

fn serve_command(state: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.env_remove("GHL_TOKEN").env_remove("DIALPAD_WEBHOOK_SECRET").env_remove("DIALPAD_GHL_ADMIN_TOKEN");
    command.args(["serve", "--mock", "--state", state.to_str().unwrap()]);
    command
}

fn output_of(command: &mut Command) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap()
}

/// A `serve` on loopback: the child and its admin URL. Killed by the caller.
fn start(mut command: Command) -> (Child, String) {
    command.args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let admin = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find_map(|l| l.strip_prefix("monitor: ").map(|rest| rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string()))
        .expect("serve printed its admin address");
    // Keep reading stdout so that serve never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, admin)
}

/// Finding 4: `serve` on a public address without the matching check stops at once, saying
/// why, what to set, and which loud flag would allow it.
#[test]
fn serve_refuses_unsafe_binds_and_names_the_loud_flag() {
    let state = host_test::support::scratch_dir("cli-access-binds");
    let out = output_of(serve_command(&state).args(["--listen", "0.0.0.0:0", "--admin-listen", "127.0.0.1:0"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started: {stderr}");
    for needed in ["not a loopback address", "webhook_secret", "--allow-unverified-webhooks-on-public-address"] {
        assert!(stderr.contains(needed), "{needed:?} not in: {stderr}");
    }
    let out = output_of(serve_command(&state).args(["--webhook-secret", "s3cr3t-webhook-secret", "--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started: {stderr}");
    for needed in ["without authentication", "DIALPAD_GHL_ADMIN_TOKEN", "--admin-token-file", "--allow-unauthenticated-admin-on-public-address"] {
        assert!(stderr.contains(needed), "{needed:?} not in: {stderr}");
    }
    let help = String::from_utf8_lossy(&output_of(Command::new(BIN).args(["serve", "--help"])).stdout).to_string();
    for needed in [
        "--allow-unverified-webhooks-on-public-address",
        "--allow-unauthenticated-admin-on-public-address",
        "--admin-token-file",
        "--admin-host",
        "DIALPAD_GHL_ADMIN_TOKEN",
    ] {
        assert!(help.contains(needed), "{needed} not in serve --help");
    }
    assert!(!help.contains("--admin-token ") && !help.contains("--admin-token <"), "a flag that ps would show");
    assert!(help.matches("`ps`").count() >= 3, "--token, --webhook-secret and --dialpad-api-key must warn of ps:\n{help}");
}

/// Finding 5: the state folder is 0700 and everything serve writes in it 0600 (0700 for
/// `compiled/`), also when an older host left them readable to all.
#[cfg(unix)]
#[test]
fn serve_keeps_its_state_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let root = host_test::support::scratch_dir("cli-access-files");
    for older in [false, true] {
        let state = root.join(if older { "older" } else { "new" });
        if older {
            std::fs::create_dir_all(state.join("compiled")).unwrap();
            std::fs::write(state.join("state.db"), b"").unwrap();
            for path in [state.clone(), state.join("compiled")] {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            std::fs::set_permissions(state.join("state.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let (mut child, admin) = start(serve_command(&state));
        assert_eq!(loopback_request("GET", &format!("{admin}/healthz"), b"").unwrap().0, 200);
        assert_eq!(mode(&state), 0o700, "the state folder (older host: {older})");
        assert_eq!(mode(&state.join("compiled")), 0o700, "compiled/ (older host: {older})");
        for name in ["state.db", "state.db-wal", "state.db-shm"] {
            assert_eq!(mode(&state.join(name)), 0o600, "{name} (older host: {older})");
        }
        for entry in std::fs::read_dir(state.join("compiled")).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// Finding 3 through the binary: the admin token comes from DIALPAD_GHL_ADMIN_TOKEN or
/// --admin-token-file; with it, the API refuses a request without the token.
#[test]
fn serve_reads_the_admin_token_from_the_environment_or_a_file() {
    let root = host_test::support::scratch_dir("cli-access-token");
    let token_file = root.join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&token_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut from_env = serve_command(&root.join("env"));
    from_env.env("DIALPAD_GHL_ADMIN_TOKEN", ADMIN_TOKEN);
    let mut from_file = serve_command(&root.join("file"));
    from_file.args(["--admin-token-file", token_file.to_str().unwrap()]);
    for command in [from_env, from_file] {
        let (mut child, admin) = start(command);
        let (status, body) = loopback_request("GET", &format!("{admin}/api/events"), b"").unwrap();
        assert_eq!(status, 401, "{body}");
        assert_eq!(loopback_request("GET", &format!("{admin}/healthz"), b"").unwrap().0, 200);
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let out = output_of(serve_command(&root.join("short")).env("DIALPAD_GHL_ADMIN_TOKEN", "short").args([
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("too short"));
}
