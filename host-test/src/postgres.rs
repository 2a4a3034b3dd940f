//! A throwaway PostgreSQL for tests: one cluster per test process, started on first use, gone
//! when the process ends.
//!
//! The binaries (`initdb`, `postgres`) are looked up on `PATH`, then under
//! `/usr/lib/postgresql/*/bin` (Debian's package), newest version first. The cluster lives in a
//! fresh temporary folder: its data directory, its log (`postgres.log`) and its unix socket. It
//! listens on 127.0.0.1 only, on a free port, with trust authentication for the user
//! `postgres`, `max_connections=400` and `fsync=on` (the tests check durability claims, so
//! commits really reach the disk).
//!
//! PostgreSQL refuses to run as root: when this process is root, the binaries run as the user
//! `postgres` (through `setpriv`), which is given the folder.
//!
//! `postgres` is started by a small shell watchdog whose standard input is a pipe from this
//! process. Nothing ever writes to it: when this process exits, however it exits (a panic, a
//! SIGKILL), the pipe closes, the watchdog reads its end, stops the server at once (SIGQUIT,
//! PostgreSQL's immediate shutdown) and removes the folder. At a normal exit the process also
//! waits for that (an `atexit` handler), so no `postgres` outlives `cargo test`.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What to tell someone whose machine has no PostgreSQL.
pub const MISSING: &str = "PostgreSQL is not installed (no `initdb` on PATH or under /usr/lib/postgresql/*/bin): apt-get install postgresql";

/// The folder holding `initdb` and `postgres`, if PostgreSQL is installed.
pub fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let mut debian: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect()).unwrap_or_default();
    // Newest major version first (`15` before `9.6`).
    debian.sort_by_key(|d| {
        std::cmp::Reverse(d.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.split('.').next()?.parse::<u32>().ok()))
    });
    on_path.into_iter().chain(debian).find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

/// Whether PostgreSQL is installed here (the tests that need it can run).
pub fn available() -> bool {
    bin_dir().is_some()
}

/// A fresh, empty database named after `name` (made unique in this process; an old one of that
/// name is dropped) in this process's cluster, started if need be: its URL,
/// `postgres://postgres@127.0.0.1:PORT/<database>`. Panics, saying why, when PostgreSQL is not
/// installed or does not start.
pub fn database(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let cluster = cluster();
    let mut db: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    db.truncate(50);
    let db = format!("{db}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let admin = cluster.url("postgres");
    let statements = [format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"), format!("CREATE DATABASE \"{db}\"")];
    // On a thread of its own: the blocking client runs a runtime, which may not nest in a
    // test's own.
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| panic!("connecting to the test PostgreSQL at {admin}: {e}"));
        for statement in &statements {
            client.batch_execute(statement).unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    })
    .join()
    .unwrap_or_else(|_| panic!("creating the test database {db} failed (above)"));
    cluster.url(&db)
}

/// The port of this process's cluster, started if need be.
pub fn port() -> u16 {
    cluster().port
}

struct Cluster {
    port: u16,
    /// Held, never written: the watchdog stops the server when it closes.
    lifeline: Mutex<Option<ChildStdin>>,
    watchdog: Mutex<Child>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

extern "C" {
    /// The C library's, which std links: run at `exit`, as the test harness ends.
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// At a normal exit, stops the server and waits (a few seconds at most) until it and its folder
/// are gone, so that nothing is left when `cargo test` moves on. (A process killed outright
/// leaves that to the watchdog, a moment later.)
extern "C" fn stop_at_exit() {
    let Some(Ok(cluster)) = CLUSTER.get() else { return };
    let Ok(mut lifeline) = cluster.lifeline.lock() else { return };
    drop(lifeline.take());
    let Ok(mut watchdog) = cluster.watchdog.lock() else { return };
    let deadline = Instant::now() + Duration::from_secs(5);
    while matches!(watchdog.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Cluster {
    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

fn cluster() -> &'static Cluster {
    let started = CLUSTER.get_or_init(|| {
        let cluster = start()?;
        // SAFETY: registers a plain function with no arguments, as `atexit` expects.
        unsafe { atexit(stop_at_exit) };
        Ok(cluster)
    });
    match started {
        Ok(cluster) => cluster,
        Err(why) => panic!("{why}"),
    }
}

/// The `postgres` user's uid and gid, from `/etc/passwd`.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let fields: Vec<&str> = passwd.lines().map(|line| line.split(':').collect::<Vec<_>>()).find(|f| f.len() > 3 && f[0] == "postgres")?;
    Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
}

/// A command running `program` as this process's user, or as `postgres` when that is root.
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The watchdog: starts `postgres` in the background, waits for its standard input to close
/// (this process gone) or for the server to exit, then stops the server at once and removes
/// the folder. `$1` the folder, `$2` the `postgres` binary, `$3` the port, `$4` `root` or not.
const WATCHDOG: &str = r#"
dir=$1; bin=$2; port=$3
if [ "$4" = root ]; then run="setpriv --reuid=postgres --regid=postgres --init-groups --"; else run=""; fi
exec 3<&0
$run "$bin" -D "$dir/data" -p "$port" -k "$dir" -c listen_addresses=127.0.0.1 -c max_connections=400 \
  -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c logging_collector=off \
  >"$dir/postgres.log" 2>&1 </dev/null 3<&- &
pid=$!
# `cat` ends when this process's end of the pipe closes (fd 3: a background job's own
# standard input would be /dev/null).
cat <&3 >/dev/null &
lifeline=$!
exec 3<&-
while kill -0 "$pid" 2>/dev/null && kill -0 "$lifeline" 2>/dev/null; do sleep 0.1; done
if kill -0 "$lifeline" 2>/dev/null; then
  # The server stopped by itself (a port taken): the folder is left to the test process.
  kill "$lifeline"
  exit 1
fi
kill -QUIT "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$dir"
"#;

fn start() -> Result<Cluster, String> {
    let bin = bin_dir().ok_or_else(|| MISSING.to_string())?;
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    let started = Instant::now();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("dialpad-ghl-pg-{}-{nanos:08x}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if root {
        let (uid, gid) = postgres_user()
            .ok_or("running as root, and PostgreSQL refuses to: a user `postgres` is needed to run it as (apt-get install postgresql creates one)")?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| format!("giving {} to postgres: {e}", dir.display()))?;
    }
    let initdb = as_owner(&bin.join("initdb"), root)
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions", "--no-sync"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", bin.join("initdb").display()))?;
    if !initdb.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!("initdb failed ({}): {}{}", initdb.status, String::from_utf8_lossy(&initdb.stdout), String::from_utf8_lossy(&initdb.stderr)));
    }
    // A port found free may be taken before the server binds it: a few tries.
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let mut watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "postgres-watchdog"])
            .arg(&dir)
            .arg(bin.join("postgres"))
            .arg(port.to_string())
            .arg(if root { "root" } else { "user" })
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting PostgreSQL's watchdog: {e}"))?;
        let lifeline = watchdog.stdin.take().expect("piped");
        let url = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = watchdog.try_wait() {
                last = log_tail(&dir);
                break;
            }
            let connected = std::thread::spawn({
                let url = url.clone();
                move || postgres::Client::connect(&url, postgres::NoTls).map(drop).map_err(|e| e.to_string())
            })
            .join()
            .unwrap_or_else(|_| Err("the client panicked".into()));
            match connected {
                Ok(()) => {
                    eprintln!("test PostgreSQL ({}) on 127.0.0.1:{port}, in {}, started in {:.1?}", bin.display(), dir.display(), started.elapsed());
                    return Ok(Cluster { port, lifeline: Mutex::new(Some(lifeline)), watchdog: Mutex::new(watchdog) });
                }
                Err(e) if Instant::now() > deadline => {
                    let log = log_tail(&dir);
                    drop(lifeline);
                    let _ = watchdog.wait();
                    return Err(format!("the test PostgreSQL did not accept connections on 127.0.0.1:{port} within 60 s: {e}\n{log}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        // The server exited (the port taken, probably): another port.
        let _ = watchdog.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(format!("the test PostgreSQL did not start: {last}"))
}

fn log_tail(dir: &Path) -> String {
    let mut log = String::new();
    let _ = std::fs::File::open(dir.join("postgres.log")).and_then(|mut f| f.read_to_string(&mut log));
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
