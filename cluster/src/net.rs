//! The runtime hosts' network: one network namespace per host, joined to this
//! machine by a veth pair.
//!
//! Addresses: a cluster claims one slot `K` (1–250) and so the subnet
//! `10.77.K.0/24`; host `i` (from 0) gets the /30 `10.77.K.4i`: this machine's end
//! of the veth pair is `10.77.K.(4i+1)` and the namespace's (`eth0` inside it) is
//! `10.77.K.(4i+2)`. Each pair is its own link, so the namespaces reach this machine
//! and nothing else: no forwarding, no routes beyond the connected ones, no NAT.
//! Names: namespace `syKrI`, this machine's end `syKrIh`.
//!
//! A partition drops every packet in and out of a namespace with nftables (inside
//! the namespace, so this machine's own rules are never touched): connections go
//! silent rather than refused, as when a network fails between hosts.
//!
//! [`Claim`] makes slots exclusive between concurrent clusters and cleans up after
//! a cluster whose process died without doing so.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::error::ClusterError;
use crate::sys;

/// Where claims live: one file per slot, holding the owner's pid and the pids of
/// the processes it started.
const CLAIMS_DIR: &str = "/run/switchyard-cluster";

/// Highest slot number.
const MAX_SLOT: u8 = 250;

/// Most runtime hosts in one cluster (a /24 holds 64 /30s).
pub const MAX_HOSTS: usize = 63;

/// The nftables table a partition adds inside a namespace.
const PARTITION_TABLE: &str = "switchyard_partition";

/// Checks that network namespaces can be created here by creating (and removing) a
/// probe namespace.
pub fn check_privilege() -> Result<(), ClusterError> {
    let probe = format!("sy-probe-{}", std::process::id());
    match sys::run("ip", &["netns", "add", &probe]) {
        Ok(_) => {
            let _ = sys::run("ip", &["netns", "del", &probe]);
            Ok(())
        }
        Err(ClusterError::Command { stderr, status, .. }) => Err(ClusterError::Unprivileged {
            detail: if stderr.is_empty() { status } else { stderr },
        }),
        Err(other) => Err(other),
    }
}

/// The addresses and names of one runtime host's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLink {
    /// The network namespace.
    pub namespace: String,
    /// This machine's end of the veth pair.
    pub host_interface: String,
    /// This machine's address on the link.
    pub host_addr: Ipv4Addr,
    /// The namespace's address (`eth0` inside it).
    pub addr: Ipv4Addr,
}

impl HostLink {
    /// The link of host `index` in slot `slot`.
    pub fn plan(slot: u8, index: usize) -> Self {
        assert!(index < MAX_HOSTS, "at most {MAX_HOSTS} hosts per cluster");
        let base = (index * 4) as u8;
        Self {
            namespace: format!("sy{slot}r{index}"),
            host_interface: format!("sy{slot}r{index}h"),
            host_addr: Ipv4Addr::new(10, 77, slot, base + 1),
            addr: Ipv4Addr::new(10, 77, slot, base + 2),
        }
    }
}

/// A slot, held exclusively while this value lives. The claim file records the
/// owner's pid and every process started for the cluster, so that a later cluster
/// can clean up after an owner that died without doing so.
#[derive(Debug)]
pub struct Claim {
    slot: u8,
    path: PathBuf,
    file: File,
}

impl Claim {
    /// Claims the first free slot: no claim file (or a stale one, cleaned up first)
    /// and no address of this machine inside its /24.
    pub fn acquire() -> Result<Self, ClusterError> {
        std::fs::create_dir_all(CLAIMS_DIR)
            .map_err(ClusterError::io(format!("creating {CLAIMS_DIR}")))?;
        // Stale claims first: their links hold addresses that would hide the slot.
        for slot in 1..=MAX_SLOT {
            let path = claim_path(slot);
            if path.exists() {
                clean_stale(slot, &path);
            }
        }
        let in_use = addresses_in_use()?;
        for slot in 1..=MAX_SLOT {
            if in_use.iter().any(|a| a.octets()[..3] == [10, 77, slot]) {
                continue;
            }
            let path = claim_path(slot);
            let Ok(mut file) = OpenOptions::new().create_new(true).append(true).open(&path) else {
                continue; // another cluster claimed it just now
            };
            writeln!(file, "{}", std::process::id())
                .map_err(ClusterError::io(format!("writing {}", path.display())))?;
            return Ok(Self { slot, path, file });
        }
        Err(ClusterError::NoSlot)
    }

    /// The slot number `K` of `10.77.K.0/24`.
    pub fn slot(&self) -> u8 {
        self.slot
    }

    /// Records a process started for the cluster.
    pub fn record_pid(&mut self, pid: u32) {
        let _ = writeln!(self.file, "{pid}");
    }

    /// Records the cluster's working directory (removed with a stale claim).
    pub fn record_dir(&mut self, dir: &std::path::Path) {
        let _ = writeln!(self.file, "dir:{}", dir.display());
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Cleans up after the cluster of a stale claim (its owner is gone): kills the
/// processes it recorded that still run a program of ours, removes its namespaces
/// and links and the claim. False when the owner still lives.
fn claim_path(slot: u8) -> PathBuf {
    PathBuf::from(format!("{CLAIMS_DIR}/slot-{slot}"))
}

fn clean_stale(slot: u8, path: &std::path::Path) -> bool {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut pids = text.lines().filter_map(|l| l.trim().parse::<i32>().ok());
    let owner = pids.next();
    if owner.is_some_and(is_alive) {
        return false;
    }
    eprintln!("cluster: cleaning up slot {slot}, left behind by process {owner:?}");
    for dir in text.lines().filter_map(|l| l.strip_prefix("dir:")) {
        if dir.starts_with("/tmp/switchyard-cluster-") {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    for pid in pids {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if matches!(comm.trim(), "switchyard" | "haproxy") {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    remove_slot_links(slot);
    let _ = std::fs::remove_file(path);
    true
}

fn is_alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes every namespace and link named for `slot`.
fn remove_slot_links(slot: u8) {
    let prefix = format!("sy{slot}r");
    let namespaces = sys::run("ip", &["netns", "list"]).unwrap_or_default();
    for name in namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        if name
            .strip_prefix(&prefix)
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
        {
            let _ = sys::run("ip", &["netns", "del", name]);
        }
    }
    let links = sys::run("ip", &["-o", "link", "show"]).unwrap_or_default();
    for line in links.lines() {
        let name = line
            .split(':')
            .nth(1)
            .map(|n| n.trim().split('@').next().unwrap_or_default())
            .unwrap_or_default();
        if name.starts_with(&prefix) && name.ends_with('h') {
            let _ = sys::run("ip", &["link", "del", name]);
        }
    }
}

/// Every IPv4 address of this machine.
fn addresses_in_use() -> Result<Vec<Ipv4Addr>, ClusterError> {
    let text = sys::run("ip", &["-o", "-4", "addr", "show"])?;
    Ok(parse_addresses(&text))
}

/// The addresses in `ip -o -4 addr show` output.
fn parse_addresses(text: &str) -> Vec<Ipv4Addr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// The runtime hosts' links of one cluster. Dropping it removes the namespaces and
/// links (stop the processes inside first: a namespace with processes in it stays
/// until they exit).
#[derive(Debug)]
pub struct Network {
    links: Vec<HostLink>,
    claim: Claim,
}

impl Network {
    /// Claims a slot and creates `hosts` namespaces with their links.
    pub fn create(hosts: usize) -> Result<Self, ClusterError> {
        if hosts > MAX_HOSTS {
            return Err(ClusterError::Start {
                what: "the network".into(),
                detail: format!("{hosts} runtime hosts asked for; at most {MAX_HOSTS}"),
            });
        }
        let claim = Claim::acquire()?;
        let mut network = Self {
            links: Vec::new(),
            claim,
        };
        for index in 0..hosts {
            let link = HostLink::plan(network.claim.slot(), index);
            // Recorded before it exists, so that a failure half-way is cleaned up.
            network.links.push(link.clone());
            create_link(&link)?;
        }
        Ok(network)
    }

    /// The links, by host index.
    pub fn links(&self) -> &[HostLink] {
        &self.links
    }

    /// The claimed slot (records pids of processes started for the cluster).
    pub fn claim_mut(&mut self) -> &mut Claim {
        &mut self.claim
    }

    /// Drops every packet in and out of host `index`'s namespace until
    /// [`Network::heal`].
    pub async fn partition(&self, index: usize) -> Result<(), ClusterError> {
        let link = &self.links[index];
        let rules = format!(
            "table inet {PARTITION_TABLE} {{\n\
             \tchain input {{ type filter hook input priority 0; policy drop; iif \"lo\" accept; }}\n\
             \tchain output {{ type filter hook output priority 0; policy drop; oif \"lo\" accept; }}\n\
             }}\n"
        );
        sys::run_with_input_async(
            "ip",
            &["netns", "exec", &link.namespace, "nft", "-f", "-"],
            &rules,
        )
        .await
        .map(drop)
    }

    /// Ends a partition of host `index`.
    pub async fn heal(&self, index: usize) -> Result<(), ClusterError> {
        let link = &self.links[index];
        sys::run_async(
            "ip",
            &[
                "netns",
                "exec",
                &link.namespace,
                "nft",
                "delete",
                "table",
                "inet",
                PARTITION_TABLE,
            ],
        )
        .await
        .map(drop)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for link in &self.links {
            let _ = sys::run("ip", &["netns", "del", &link.namespace]);
            // Deleting the namespace deletes its end, and so the pair; this is for
            // a pair whose namespace end was never moved in.
            let _ = sys::run("ip", &["link", "del", &link.host_interface]);
        }
    }
}

fn create_link(link: &HostLink) -> Result<(), ClusterError> {
    let ns = link.namespace.as_str();
    let host_if = link.host_interface.as_str();
    let host_cidr = format!("{}/30", link.host_addr);
    let ns_cidr = format!("{}/30", link.addr);
    sys::run("ip", &["netns", "add", ns])?;
    sys::run(
        "ip",
        &[
            "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ],
    )?;
    sys::run("ip", &["addr", "add", &host_cidr, "dev", host_if])?;
    sys::run("ip", &["link", "set", host_if, "up"])?;
    sys::run("ip", &["-n", ns, "addr", "add", &ns_cidr, "dev", "eth0"])?;
    sys::run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
    sys::run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_plan_gives_each_host_its_own_slash_30() {
        let check = |slot, index, expected: (&str, &str, &str, &str)| {
            let link = HostLink::plan(slot, index);
            assert_eq!(
                (
                    link.namespace.as_str(),
                    link.host_interface.as_str(),
                    link.host_addr.to_string().as_str(),
                    link.addr.to_string().as_str()
                ),
                expected
            );
            // Interface names must fit the kernel's 15 characters.
            assert!(link.host_interface.len() <= 15);
        };
        check(1, 0, ("sy1r0", "sy1r0h", "10.77.1.1", "10.77.1.2"));
        check(1, 1, ("sy1r1", "sy1r1h", "10.77.1.5", "10.77.1.6"));
        check(
            250,
            62,
            ("sy250r62", "sy250r62h", "10.77.250.249", "10.77.250.250"),
        );
    }

    #[test]
    fn addresses_are_read_from_ip_output() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                    7: sy3r0h    inet 10.77.3.1/30 scope global sy3r0h\\       valid_lft forever\n\
                    9: eth0    inet6 fe80::1/64 scope link\n";
        assert_eq!(
            parse_addresses(text),
            [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(10, 77, 3, 1)]
        );
    }
}
