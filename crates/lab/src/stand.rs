//! The lab's namespaces standing for another stage (`scan --from ZONE`): the topology of a
//! site built, the emitted ruleset loaded into the firewall namespace, and nothing sent.
//! Everything is removed when the [`Stand`] is dropped (and on signals, through the lab's
//! clean-up). No DNS servers: what stands here is addressed by the lab's addresses.

use portolan_model::ir::Policy;

use crate::command::{self, Where};
use crate::error::{Error, Result};
use crate::lab;
use crate::netns::{self, Lock, Resources};
use crate::topology::{self, Topology};

/// A built lab, removed when dropped.
pub struct Stand {
    pub topo: Topology,
    res: Resources,
    _lock: Lock,
}

impl Stand {
    /// Builds the namespaces of `policy` and loads its emitted nftables ruleset.
    pub fn up(policy: &Policy, progress: &dyn Fn(&str)) -> Result<Stand> {
        let prefix = netns::unique_prefix();
        let topo = topology::plan(policy, &prefix)?;
        let ruleset = portolan_emit::nftables::emit(policy, &portolan_emit::Options::default())?;
        lab::preflight(false)?;
        netns::install_signal_cleanup()?;
        let lock = Lock::acquire(&|| progress("waiting for another lab run to finish"))?;
        let mut res = Resources::new();
        let dir = std::env::temp_dir().join(format!("portolan-stand-{prefix}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        res.add_dir(dir.clone());
        progress(&format!(
            "building {} network namespaces ({prefix}-*) and loading the ruleset",
            topo.spaces.len() + 1
        ));
        let mut stand = Stand {
            topo,
            res,
            _lock: lock,
        };
        lab::build(&stand.topo, &mut stand.res)?;
        let file = dir.join("ruleset.nft");
        lab::write(&file, &ruleset)?;
        let path = file.display().to_string();
        command::run(Where::Netns(stand.topo.fw.clone()).command("nft", &["-f", &path]))?;
        Ok(stand)
    }
}

impl Drop for Stand {
    fn drop(&mut self) {
        for left in self.res.release() {
            eprintln!("portolan: could not remove {left}");
        }
    }
}
