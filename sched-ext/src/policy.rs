// SPDX-License-Identifier: GPL-2.0-only
//! The policies (rundata::policy, their one home) as the BPF side reads them.

pub use rundata::policy::*;

use crate::bpf_intf;

fn comp_value(c: Comp) -> u32 {
    match c {
        Comp::Cfs => bpf_intf::battle_component_COMP_CFS,
        Comp::Ule => bpf_intf::battle_component_COMP_ULE,
    }
}

/// (queue_comp, place_comp, balance_comp) for the BPF side (shared.bpf.h).
pub fn bpf_values(p: Policy) -> (u32, u32, u32) {
    match p {
        Policy::Vtime => {
            let v = bpf_intf::battle_component_COMP_VTIME;
            (v, v, v)
        }
        Policy::Mix { queue, place, balance } => (comp_value(queue), comp_value(place), comp_value(balance)),
    }
}
