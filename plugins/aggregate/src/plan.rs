//! Orders the parts into waves: a wave holds the parts whose dependencies
//! all finished in earlier waves, so each wave is one concurrent batch.

/// `deps[i]` lists the parts part `i` reads. Returns the waves (part
/// indexes in config order), or the error naming a cycle.
pub fn waves(names: &[String], deps: &[Vec<usize>]) -> Result<Vec<Vec<usize>>, String> {
    let mut wave_of: Vec<Option<usize>> = vec![None; names.len()];
    let mut waves: Vec<Vec<usize>> = Vec::new();
    let mut placed = 0;
    while placed < names.len() {
        let ready: Vec<usize> = (0..names.len())
            .filter(|&i| wave_of[i].is_none())
            .filter(|&i| deps[i].iter().all(|&d| wave_of[d].is_some_and(|w| w < waves.len())))
            .collect();
        if ready.is_empty() {
            return Err(cycle_error(names, deps, &wave_of));
        }
        for &i in &ready {
            wave_of[i] = Some(waves.len());
        }
        placed += ready.len();
        waves.push(ready);
    }
    Ok(waves)
}

/// Follows dependencies among the unplaced parts until one repeats: every
/// unplaced part depends on another unplaced one, so the walk must loop.
fn cycle_error(names: &[String], deps: &[Vec<usize>], wave_of: &[Option<usize>]) -> String {
    let start = (0..names.len()).find(|&i| wave_of[i].is_none()).expect("called with parts left");
    let mut path = vec![start];
    loop {
        let current = *path.last().expect("never empty");
        let next = deps[current]
            .iter()
            .copied()
            .find(|&d| wave_of[d].is_none())
            .expect("an unplaced part waits for another unplaced part");
        if let Some(at) = path.iter().position(|&p| p == next) {
            let cycle: Vec<&str> =
                path[at..].iter().chain(std::iter::once(&next)).map(|&i| names[i].as_str()).collect();
            return format!(
                "parts: dependency cycle: {} (a part can only use the responses of parts that do not need its own)",
                cycle.join(" → ")
            );
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn independent_parts_share_the_first_wave() {
        let waves = waves(&names(&["a", "b", "c"]), &[vec![], vec![], vec![]]).unwrap();
        assert_eq!(waves, [vec![0, 1, 2]]);
    }

    #[test]
    fn dependents_follow_in_dependency_order_whatever_the_config_order() {
        // c needs b, b needs a, d needs a and c.
        let waves = waves(&names(&["c", "d", "b", "a"]), &[vec![2], vec![3, 0], vec![3], vec![]]).unwrap();
        assert_eq!(waves, [vec![3], vec![2], vec![0], vec![1]]);
    }

    #[test]
    fn a_cycle_is_named() {
        let err = waves(&names(&["root", "a", "b", "c"]), &[vec![], vec![0, 3], vec![1], vec![2]]).unwrap_err();
        assert!(err.contains("dependency cycle: a → c → b → a"), "{err}");
        let err = waves(&names(&["self"]), &[vec![0]]).unwrap_err();
        assert!(err.contains("self → self"), "{err}");
    }
}
