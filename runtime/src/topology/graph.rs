//! Wiring rules: every input names a node, no cycles, one connected graph, and AVA's placement
//! rules (ava-spec §1.3), e.g. a signal gate feeds sinks directly.

use std::collections::{BTreeMap, BTreeSet};

use super::error::ErrorSink;
use super::model::{MediaType, Node, NodeConfig};
use super::node_type::{NodeRole, NodeType};

/// Checks the graph formed by `nodes`, recording every problem.
pub fn check_graph(nodes: &[Node], errors: &ErrorSink) {
    let mut by_name: BTreeMap<&str, &Node> = BTreeMap::new();
    for node in nodes {
        if by_name.insert(&node.name, node).is_some() {
            errors.invalid(
                &format!("{}.name", node.path),
                Some(&node.name),
                format!("node name '{}' is used by more than one node", node.name),
            );
        }
    }
    let mut wiring_ok = true;
    for node in nodes {
        for (i, input) in node.inputs.iter().enumerate() {
            let path = format!("{}.inputs[{i}].nodeName", node.path);
            match by_name.get(input.node_name.as_str()) {
                None => {
                    wiring_ok = false;
                    errors.invalid(
                        &path,
                        Some(&node.name),
                        format!("input '{}' is not a node of this topology", input.node_name),
                    );
                }
                Some(upstream) if upstream.role == NodeRole::Sink => {
                    wiring_ok = false;
                    errors.invalid(
                        &path,
                        Some(&node.name),
                        format!(
                            "input '{}' is a sink; sinks have no outputs",
                            input.node_name
                        ),
                    );
                }
                Some(_) => {}
            }
        }
    }
    if !wiring_ok {
        return;
    }
    check_cycles(nodes, &by_name, errors);
    check_connected(nodes, errors);
    check_rtsp_sources(nodes, errors);
    for node in nodes {
        check_placement(node, nodes, &by_name, errors);
    }
}

fn check_cycles(nodes: &[Node], by_name: &BTreeMap<&str, &Node>, errors: &ErrorSink) {
    // Depth-first search over upstream edges; a node met again on the current path closes a cycle.
    fn visit<'a>(
        node: &'a Node,
        by_name: &BTreeMap<&str, &'a Node>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        cycles: &mut Vec<Vec<&'a str>>,
    ) {
        if done.contains(node.name.as_str()) {
            return;
        }
        if let Some(pos) = path.iter().position(|n| *n == node.name) {
            cycles.push(path[pos..].to_vec());
            return;
        }
        path.push(&node.name);
        for input in &node.inputs {
            if let Some(up) = by_name.get(input.node_name.as_str()) {
                visit(up, by_name, path, done, cycles);
            }
        }
        path.pop();
        done.insert(&node.name);
    }
    let mut done = BTreeSet::new();
    let mut cycles = Vec::new();
    for node in nodes {
        visit(node, by_name, &mut Vec::new(), &mut done, &mut cycles);
    }
    for cycle in cycles {
        let first = cycle[0];
        let mut ring: Vec<&str> = cycle.iter().rev().copied().collect();
        ring.insert(0, first);
        if let Some(node) = by_name.get(first) {
            errors.invalid(
                &format!("{}.inputs", node.path),
                Some(first),
                format!("the graph has a cycle: {}", ring.join(" -> ")),
            );
        }
    }
}

fn check_connected(nodes: &[Node], errors: &ErrorSink) {
    let Some(first) = nodes.first() else { return };
    let mut reached: BTreeSet<&str> = BTreeSet::from([first.name.as_str()]);
    loop {
        let before = reached.len();
        for node in nodes {
            for input in &node.inputs {
                if reached.contains(node.name.as_str())
                    || reached.contains(input.node_name.as_str())
                {
                    reached.insert(&node.name);
                    reached.insert(&input.node_name);
                }
            }
        }
        if reached.len() == before {
            break;
        }
    }
    for node in nodes.iter().filter(|n| !reached.contains(n.name.as_str())) {
        errors.invalid(
            &node.path,
            Some(&node.name),
            format!(
                "node '{}' is not connected to the graph of '{}' (a topology is one graph)",
                node.name, first.name
            ),
        );
    }
}

fn check_rtsp_sources(nodes: &[Node], errors: &ErrorSink) {
    let rtsp: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.node_type == NodeType::RtspSource)
        .collect();
    for extra in rtsp.iter().skip(1) {
        errors.invalid(
            &extra.path,
            Some(&extra.name),
            format!(
                "a topology has one RtspSource; '{}' is already one (use one pipeline per camera)",
                rtsp[0].name
            ),
        );
    }
}

fn check_placement(
    node: &Node,
    nodes: &[Node],
    by_name: &BTreeMap<&str, &Node>,
    errors: &ErrorSink,
) {
    let upstream = |t: NodeType| {
        node.inputs.iter().filter(move |i| {
            by_name
                .get(i.node_name.as_str())
                .is_some_and(|n| n.node_type == t)
        })
    };
    // Rules about neighbours this runtime does not run would only repeat the `not supported` line.
    let unsupported_input = node.inputs.iter().any(|i| {
        by_name
            .get(i.node_name.as_str())
            .is_some_and(|n| matches!(n.config, NodeConfig::NotSupported))
    });
    if unsupported_input || matches!(node.config, NodeConfig::NotSupported) {
        return;
    }
    let invalid =
        |msg: String| errors.invalid(&format!("{}.inputs", node.path), Some(&node.name), msg);
    match node.node_type {
        NodeType::SignalGateProcessor => {
            if !upstream(NodeType::RtspSource).any(|i| i.accepts(MediaType::Video)) {
                invalid("a signal gate needs a video input from the RtspSource".into());
            }
            let events = node.inputs.iter().filter(|i| {
                by_name
                    .get(i.node_name.as_str())
                    .is_some_and(|n| n.node_type != NodeType::RtspSource)
            });
            if events.count() == 0 {
                invalid("a signal gate needs at least one event input (e.g. motion detection or an IotHubMessageSource)".into());
            }
            let consumers: Vec<&Node> = nodes
                .iter()
                .filter(|n| n.inputs.iter().any(|i| i.node_name == node.name))
                .collect();
            if consumers.is_empty() {
                errors.invalid(
                    &node.path,
                    Some(&node.name),
                    "the signal gate's output is not used; connect it to a FileSink or VideoSink",
                );
            }
            for c in consumers.iter().filter(|c| !c.node_type.is_media_sink()) {
                errors.invalid(
                    &format!("{}.inputs", c.path),
                    Some(&c.name),
                    format!(
                        "a signal gate must feed a FileSink or VideoSink directly, but {} '{}' reads from '{}'",
                        c.node_type.short_name(),
                        c.name,
                        node.name
                    ),
                );
            }
        }
        NodeType::MotionDetectionProcessor => {
            if node.inputs.len() != 1 || upstream(NodeType::RtspSource).count() != 1 {
                invalid(
                    "motion detection reads video straight from the RtspSource (one input)".into(),
                );
            } else if !node.inputs[0].accepts(MediaType::Video) {
                invalid(
                    "the input's output selector excludes video, which motion detection needs"
                        .into(),
                );
            }
        }
        NodeType::FileSink
            if (upstream(NodeType::SignalGateProcessor).count() != 1 || node.inputs.len() != 1) =>
        {
            invalid("a FileSink reads from exactly one SignalGateProcessor".into());
        }
        NodeType::VideoSink => {
            let media = upstream(NodeType::RtspSource)
                .chain(upstream(NodeType::SignalGateProcessor))
                .count();
            if media != 1 {
                invalid(
                    "a VideoSink reads media from exactly one RtspSource or SignalGateProcessor"
                        .into(),
                );
            }
        }
        NodeType::IotHubMessageSink => {
            if upstream(NodeType::IotHubMessageSource).count() > 0 {
                invalid(
                    "an IotHubMessageSink cannot read straight from an IotHubMessageSource".into(),
                );
            }
            if upstream(NodeType::RtspSource).count() > 0 {
                invalid(
                    "an IotHubMessageSink carries events; it cannot read media from the RtspSource"
                        .into(),
                );
            }
        }
        _ => {}
    }
}
