//! Which node holds a session: rendezvous (highest random weight) hashing.
//!
//! Every node gets a score for a key, a hash of the node's name and the
//! key, and the key goes to the node with the highest score. Adding a node
//! moves only the keys it now wins (about 1/N of them); removing one moves
//! only its own keys. The hash is fixed (FNV-1a, then a 64-bit finaliser),
//! so every instance, of any build, places a key on the same node given the
//! same node names.

/// The nodes' name hashes, in configuration order.
#[derive(Debug, Clone)]
pub(super) struct Ring {
    nodes: Vec<u64>,
}

impl Ring {
    /// A ring over nodes named `names` (their `host:port` as configured).
    pub(super) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Ring {
            nodes: names.into_iter().map(|n| fnv1a(n.as_bytes())).collect(),
        }
    }

    /// The index of the node that holds `key`, or `None` without nodes.
    pub(super) fn node_for(&self, key: &[u8]) -> Option<usize> {
        let key = fnv1a(key);
        self.nodes
            .iter()
            .enumerate()
            .max_by_key(|&(i, &node)| (mix(key ^ node), std::cmp::Reverse(i)))
            .map(|(i, _)| i)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// MurmurHash3's 64-bit finaliser: spreads every input bit over the output.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:11211")).collect()
    }

    fn place(names: &[String], keys: &[String]) -> Vec<String> {
        let ring = Ring::new(names.iter().map(String::as_str));
        keys.iter()
            .map(|k| names[ring.node_for(k.as_bytes()).unwrap()].clone())
            .collect()
    }

    fn keys() -> Vec<String> {
        (0..20_000).map(|i| format!("session:{i:08x}")).collect()
    }

    #[test]
    fn keys_spread_evenly() {
        let names = names(5);
        let placed = place(&names, &keys());
        for name in &names {
            let share = placed.iter().filter(|p| *p == name).count() as f64 / 20_000.0;
            assert!((0.17..0.23).contains(&share), "{name} holds {share}");
        }
    }

    #[test]
    fn removing_one_of_n_nodes_moves_only_its_keys() {
        let keys = keys();
        for n in [2, 3, 5, 10] {
            let all = names(n);
            let before = place(&all, &keys);
            let gone = &all[n / 2];
            let rest: Vec<String> = all.iter().filter(|a| *a != gone).cloned().collect();
            let after = place(&rest, &keys);
            let mut moved = 0;
            for (b, a) in before.iter().zip(&after) {
                if b != a {
                    assert_eq!(b, gone, "a key moved between two remaining nodes");
                    moved += 1;
                }
            }
            let share = moved as f64 / keys.len() as f64;
            let expected = 1.0 / n as f64;
            assert!(
                (share - expected).abs() < 0.3 * expected,
                "removing 1 of {n} nodes moved {share} of the keys"
            );
        }
    }

    #[test]
    fn adding_a_node_moves_about_one_in_n_plus_one_keys_to_it() {
        let keys = keys();
        for n in [1, 2, 4, 9] {
            let mut all = names(n);
            let before = place(&all, &keys);
            all.push("10.0.1.1:11211".into());
            let after = place(&all, &keys);
            let mut moved = 0;
            for (b, a) in before.iter().zip(&after) {
                if b != a {
                    assert_eq!(a, "10.0.1.1:11211", "a key moved between two old nodes");
                    moved += 1;
                }
            }
            let share = moved as f64 / keys.len() as f64;
            let expected = 1.0 / (n + 1) as f64;
            assert!(
                (share - expected).abs() < 0.3 * expected,
                "adding a node to {n} moved {share} of the keys"
            );
        }
    }

    #[test]
    fn placement_does_not_depend_on_node_order() {
        let keys = keys();
        let mut names = names(4);
        let before = place(&names, &keys);
        names.reverse();
        assert_eq!(place(&names, &keys), before);
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // Instances of different builds must agree on placement: these
        // values are fixed for good.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let names = ["a:1", "b:1", "c:1"];
        let ring = Ring::new(names);
        let placed: Vec<&str> = ["x", "y", "z", "session:abc"]
            .iter()
            .map(|k| names[ring.node_for(k.as_bytes()).unwrap()])
            .collect();
        assert_eq!(placed, ["c:1", "c:1", "c:1", "b:1"]);
        assert!(Ring::new([]).node_for(b"x").is_none());
    }
}
