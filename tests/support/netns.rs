//! Another host on this machine: a network namespace, made by the test, joined to the test's
//! own namespace by one veth pair per peer (link `i`: `10.<net>.<i>.1` here, `10.<net>.<i>.2`
//! there). Cutting a link takes its interface down: packets are dropped with no reset, as when
//! a cable or a switch port fails, and connections hang until their own time-outs notice.
//! Needs root (`ip netns`); [`Lan::create`] says why when it cannot.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Namespaces made by this test process (each gets its own `10.<net>` range and names).
static MADE: AtomicU32 = AtomicU32::new(0);

/// The namespace and its links; deleted (with the links) when dropped.
pub struct Lan {
    name: String,
    net: u32,
    links: usize,
    tag: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lan {
    /// A namespace with `links` links to this one, its loopback up; the error says why it
    /// cannot be made here (not root, no `ip`).
    pub fn create(links: usize) -> Result<Self, String> {
        let n = MADE.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id() % 100_000;
        let lan = Self {
            name: format!("vigil-{pid}-{n}"),
            net: 100 + (pid * 7 + n) % 150,
            links,
            tag: format!("{:x}{n}", pid),
        };
        ip(&["netns", "add", &lan.name])?;
        ip(&["netns", "exec", &lan.name, "ip", "link", "set", "lo", "up"])?;
        for i in 0..links {
            let (here, there) = lan.interfaces(i);
            ip(&["link", "add", &here, "type", "veth", "peer", "name", &there])?;
            ip(&["link", "set", &there, "netns", &lan.name])?;
            ip(&["addr", "add", &format!("{}/24", lan.here(i)), "dev", &here])?;
            ip(&["link", "set", &here, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", lan.name.as_str(), "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            inside(&[
                "addr",
                "add",
                &format!("{}/24", lan.there(i)),
                "dev",
                &there,
            ])?;
            inside(&["link", "set", &there, "up"])?;
        }
        Ok(lan)
    }

    fn interfaces(&self, i: usize) -> (String, String) {
        (format!("vh{}l{i}", self.tag), format!("vn{}l{i}", self.tag))
    }

    fn here(&self, i: usize) -> String {
        format!("10.{}.{i}.1", self.net)
    }

    /// The namespace's address on link `i`.
    pub fn there(&self, i: usize) -> String {
        format!("10.{}.{i}.2", self.net)
    }

    /// `program` to run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Takes link `i` down: nothing crosses it, and nobody is told.
    pub fn cut(&self, i: usize) {
        ip(&["link", "set", &self.interfaces(i).0, "down"]).expect("link down");
    }

    /// Brings link `i` back.
    pub fn restore(&self, i: usize) {
        ip(&["link", "set", &self.interfaces(i).0, "up"]).expect("link up");
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for i in 0..self.links {
            let _ = ip(&["link", "del", &self.interfaces(i).0]);
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}
