#![allow(dead_code)]
//! TLS peers for the tests: a throwaway CA made with the `openssl` CLI and the server
//! certificates it signs, a Mosquitto broker with only a TLS listener, a TLS-terminating proxy
//! (scripts/peers/tls-proxy.py), and a probe that reports which certificate a server presents.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::peers::Peer;
use super::repo;

/// The OpenSSL command-line tool.
const OPENSSL: &str = "/usr/bin/openssl";

/// The config every openssl call here uses, so the system openssl.cnf adds nothing. `dn` is
/// empty because the subject always comes from `-subj`.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no

[dn]

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

/// Connects with TLS to 127.0.0.1:argv[1], verifying against the CA file argv[2] (or the
/// system roots) with hostname checking for 127.0.0.1; prints the SHA-256 of the server
/// certificate's DER, or exits 1 with the error on stderr.
const PROBE: &str = r#"
import hashlib, socket, ssl, sys
port, ca = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else None)
ctx = ssl.create_default_context(cafile=ca)
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
except ssl.SSLCertVerificationError as e:
    sys.exit(f"certificate verify failed: {e.verify_message} (code {e.verify_code})")
except (OSError, ssl.SSLError) as e:
    sys.exit(f"{type(e).__name__}: {e}")
print(hashlib.sha256(der).hexdigest())
"#;

/// A throwaway certificate authority: an EC P-256 key and a self-signed CA certificate.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The folder holding the CA and every certificate it issues.
    pub dir: PathBuf,
    /// The CA certificate (PEM), the trust anchor to hand to clients.
    pub ca_cert: PathBuf,
    /// The CA private key (PEM PKCS#8).
    ca_key: PathBuf,
}

/// A server certificate and its key, valid for 127.0.0.1 and localhost.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM PKCS#8, EC P-256).
    pub key: PathBuf,
}

impl TestCa {
    /// Makes a fresh CA with CN `name` in `dir`: `ca.crt`, `ca.key`, and the `openssl.cnf` the
    /// certificates are made with. Files of an earlier CA there are replaced.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        std::fs::create_dir_all(dir).expect("CA dir");
        let dir = absolute(dir);
        std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).expect("write openssl.cnf");
        let ca = TestCa {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            dir,
        };
        new_key(&ca.ca_key);
        run(
            Command::new(OPENSSL)
                .args(["req", "-new", "-x509", "-config"])
                .arg(ca.config())
                .arg("-key")
                .arg(&ca.ca_key)
                .args(["-subj", &subject(name)])
                .args(["-days", "3650", "-sha256", "-extensions", "ca_ext", "-out"])
                .arg(&ca.ca_cert),
            "making the CA certificate",
        );
        ca
    }

    /// Issues a server certificate for `common_name`, signed by this CA, with a fresh random
    /// serial: SAN `IP:127.0.0.1, DNS:localhost`, extendedKeyUsage serverAuth, 825 days from
    /// now. Writes `<dir>/<stem>.crt` and `<dir>/<stem>.key`.
    pub fn issue(&self, stem: &str, common_name: &str) -> ServerCert {
        let cert = self.dir.join(format!("{stem}.crt"));
        let key = self.dir.join(format!("{stem}.key"));
        let csr = self.dir.join(format!("{stem}.csr"));
        new_key(&key);
        run(
            Command::new(OPENSSL)
                .args(["req", "-new", "-config"])
                .arg(self.config())
                .arg("-key")
                .arg(&key)
                .args(["-subj", &subject(common_name), "-out"])
                .arg(&csr),
            "making the certificate request",
        );
        let serial = random_serial();
        run(
            Command::new(OPENSSL)
                .args(["x509", "-req", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&self.ca_cert)
                .arg("-CAkey")
                .arg(&self.ca_key)
                .args(["-set_serial", &serial, "-days", "825", "-sha256"])
                .arg("-extfile")
                .arg(self.config())
                .args(["-extensions", "server_ext", "-out"])
                .arg(&cert),
            "signing the server certificate",
        );
        let _ = std::fs::remove_file(&csr);
        ServerCert { cert, key }
    }

    /// The openssl config the CA was made with.
    fn config(&self) -> PathBuf {
        self.dir.join("openssl.cnf")
    }
}

impl ServerCert {
    /// The lowercase hex SHA-256 of the certificate's DER (what a pin or a probe compares).
    pub fn der_sha256(&self) -> String {
        let out = run(
            Command::new(OPENSSL)
                .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
                .arg(&self.cert),
            "fingerprinting the certificate",
        );
        // `sha256 Fingerprint=F6:53:…` (the label's case varies between OpenSSL versions).
        let text = String::from_utf8_lossy(&out);
        let hex: String = text
            .lines()
            .find_map(|l| l.split_once('='))
            .map(|(_, v)| {
                v.chars()
                    .filter(|c| *c != ':' && !c.is_whitespace())
                    .collect::<String>()
            })
            .unwrap_or_default();
        let hex = hex.to_ascii_lowercase();
        assert!(
            hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "unexpected openssl fingerprint output: {text:?}"
        );
        hex
    }
}

/// Connects to 127.0.0.1:`port` with TLS and returns the lowercase hex SHA-256 of the DER
/// certificate the server presents. The chain is verified against `ca` (a PEM file) when
/// given, else against the system roots, and the certificate must be valid for 127.0.0.1.
/// Any failure (verification, refused connection, handshake) is `Err` with Python's words,
/// e.g. `certificate verify failed: unable to get local issuer certificate (code 20)`.
pub fn peer_certificate_sha256(port: u16, ca: Option<&Path>) -> Result<String, String> {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", PROBE, &port.to_string()]);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("/usr/bin/python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && stdout.len() == 64 && stdout.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(if stderr.is_empty() { stdout } else { stderr })
    }
}

/// A Mosquitto broker with a single listener, TLS on 127.0.0.1:`port`, serving `server`
/// (anonymous clients, no client certificates). Its config is `<dir>/mosquitto-tls.conf`; its
/// log `<dir>/mosquitto.log`.
pub fn mosquitto_tls(port: u16, ca: &TestCa, server: &ServerCert, dir: &Path) -> Peer {
    let dir = absolute(dir);
    // Started as root, mosquitto drops to the `mosquitto` user before reading the key, which
    // openssl wrote 0600: `user root` keeps it able to. A non-root mosquitto ignores `user`.
    let config = format!(
        "listener {port} 127.0.0.1\n\
         cafile {}\n\
         certfile {}\n\
         keyfile {}\n\
         require_certificate false\n\
         allow_anonymous true\n\
         user root\n\
         log_dest stderr\n",
        absolute(&ca.ca_cert).display(),
        absolute(&server.cert).display(),
        absolute(&server.key).display(),
    );
    let conf = dir.join("mosquitto-tls.conf");
    std::fs::write(&conf, config).expect("write mosquitto-tls.conf");
    let log_path = dir.join("mosquitto.log");
    let log = std::fs::File::create(&log_path).expect("mosquitto log");
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("mosquitto starts (scripts/setup-media.sh installs it)");
    let mut peer = Peer { child };
    wait_listening(&mut peer, port, &log_path, "mosquitto (TLS)");
    peer
}

/// Publishes `payload` on `topic` (QoS 1) with mosquitto_pub over TLS to 127.0.0.1:`port`,
/// trusting the CA file `ca`.
pub fn mqtt_publish_tls(port: u16, ca: &Path, topic: &str, payload: &str) {
    let ca = ca.to_str().expect("a UTF-8 path");
    super::peers::mqtt_publish_with(port, topic, payload, &["--cafile", ca, "-h", "127.0.0.1"]);
}

/// scripts/peers/tls-proxy.py: TLS with `server` on 127.0.0.1:`listen_port`, forwarding each
/// connection as plain TCP to 127.0.0.1:`backend_port`. Its log is
/// `<dir>/tls-proxy-<listen_port>.log` (one line per connection and per failed handshake).
pub fn tls_proxy(listen_port: u16, backend_port: u16, server: &ServerCert, dir: &Path) -> Peer {
    let log_path = dir.join(format!("tls-proxy-{listen_port}.log"));
    let log = std::fs::File::create(&log_path).expect("tls-proxy log");
    let mut child = Command::new("/usr/bin/python3")
        .arg(repo().join("scripts/peers/tls-proxy.py"))
        .args([
            "--listen",
            &listen_port.to_string(),
            "--backend",
            &backend_port.to_string(),
        ])
        .arg("--cert")
        .arg(&server.cert)
        .arg("--key")
        .arg(&server.key)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("tls-proxy.py starts");
    // It prints `ready PORT` once it listens; waiting for that avoids a probe connection,
    // which it would log as a failed handshake.
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    let peer = Peer { child };
    assert!(
        line.starts_with("ready "),
        "tls-proxy did not start: {line:?}; log: {}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    peer
}

/// Waits (10 s) until something listens on `port`; panics with the log when the process
/// exits or the time runs out.
fn wait_listening(peer: &mut Peer, port: u16, log: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = peer.child.try_wait() {
            panic!(
                "{what} exited ({status}) before listening on {port}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: nothing listens on {port}; log: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs an openssl command; panics with its stderr when it fails. Returns its stdout.
fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {OPENSSL}: {e}"));
    assert!(
        out.status.success(),
        "{what}: openssl failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Writes a fresh EC P-256 private key (PEM PKCS#8) to `path`.
fn new_key(path: &Path) {
    run(
        Command::new(OPENSSL)
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(path),
        "making an EC P-256 key",
    );
}

/// A random 128-bit serial number for `-set_serial`.
fn random_serial() -> String {
    let out = run(
        Command::new(OPENSSL).args(["rand", "-hex", "16"]),
        "making a random serial",
    );
    let hex = String::from_utf8_lossy(&out).trim().to_string();
    assert!(
        hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "unexpected openssl rand output: {hex:?}"
    );
    format!("0x{hex}")
}

/// `-subj` text for a certificate whose only subject field is CN = `name`.
fn subject(name: &str) -> String {
    format!("/CN={}", name.replace('\\', "\\\\").replace('/', "\\/"))
}

/// `path` made absolute (against the current directory), for configs read by other processes.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    })
}
