//! Building the profile from the rules: extension flows checked against what the exporter
//! writes for them, the other rules grouped and read by the direction rule, peers as endpoints,
//! and the profile document assembled.

use super::*;

impl Builder<'_> {
    pub(super) fn ext_flow_id(&self, i: usize) -> String {
        self.ext
            .as_ref()
            .and_then(|x| x.flows.get(i))
            .and_then(|f| f.flow.get("id"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    }

    /// Extension flows whose ACE names all exist and are claimed once.
    pub(super) fn accept_initial(&mut self, p: &mut Problems) {
        let Some(ext) = &self.ext else { return };
        let names: BTreeSet<&str> = self.rules.iter().map(|r| r.ace.as_str()).collect();
        let mut taken: BTreeSet<&str> = BTreeSet::new();
        let base = join(&join("/ietf-mud:mud", MEMBER), "flows");
        for (i, f) in ext.flows.iter().enumerate() {
            let missing: Vec<&str> = f
                .aces
                .iter()
                .map(String::as_str)
                .filter(|a| !names.contains(a) || taken.contains(a))
                .collect();
            if missing.is_empty() {
                taken.extend(f.aces.iter().map(String::as_str));
                self.accepted.push(true);
            } else {
                p.warning(
                    &join(&base, i),
                    Code::ExtensionMismatch,
                    format!(
                        "extension flow `{}` names ACEs the policies do not hold (or another flow claims): {}; its ACEs are imported on their own",
                        f.flow.get("id").and_then(Value::as_str).unwrap_or("?"),
                        missing.join(", ")
                    ),
                );
                self.accepted.push(false);
            }
        }
    }

    /// Accepted extension flows whose ACEs differ from what the exporter writes for them.
    pub(super) fn inconsistent(&self, profile: &Profile) -> Vec<(usize, String)> {
        let Some(ext) = &self.ext else {
            return Vec::new();
        };
        let mud_url = &self.file.mud.mud_url;
        let mode = ext
            .mode
            .as_ref()
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str);
        let mut bad = Vec::new();
        for (i, f) in ext.flows.iter().enumerate() {
            if !self.accepted.get(i).copied().unwrap_or(false) || f.aces.is_empty() {
                continue;
            }
            let id = f.flow.get("id").and_then(Value::as_str).unwrap_or("");
            let Some(flow) = profile.flows_in(mode).find(|x| x.id == id) else {
                bad.push((i, "the flow is missing from the profile".to_string()));
                continue;
            };
            let mut want: Vec<Key> = Vec::new();
            match plan(flow, profile, mud_url) {
                Err(u) => {
                    bad.push((i, format!("the flow cannot be in ACLs ({})", u.why)));
                    continue;
                }
                Ok(pl) => {
                    for unit in &pl.units {
                        for (fam, dir, m) in unit {
                            let ace = Ace {
                                name: "x".into(),
                                matches: m.clone(),
                                actions: Actions {
                                    forwarding: "accept".into(),
                                    ..Actions::default()
                                },
                                ..Ace::default()
                            };
                            let t = match fam {
                                Family::V4 => "ipv4-acl-type",
                                Family::V6 => "ipv6-acl-type",
                            };
                            if let Some(r) = rule_of(&ace, "x", t, *dir) {
                                want.push(key(&r));
                            }
                        }
                    }
                }
            }
            let mut have: Vec<Key> = claimed(self.rules, &f.aces).into_iter().map(key).collect();
            want.sort();
            have.sort();
            if want != have {
                bad.push((
                    i,
                    format!(
                        "its {} ACE(s) do not say what the flow says ({} expected)",
                        have.len(),
                        want.len()
                    ),
                ));
            }
        }
        bad
    }

    pub(super) fn build(&self) -> (Doc, Vec<Problem>) {
        let mut notes = Problems::new(false);
        let mud = &self.file.mud;
        let ext = self.ext.as_ref();
        let accepted = |i: usize| self.accepted.get(i).copied().unwrap_or(false);
        let ext_flows: Vec<&Map<String, Value>> = ext
            .map(|x| {
                x.flows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| accepted(*i))
                    .map(|(_, f)| &f.flow)
                    .collect()
            })
            .unwrap_or_default();
        let claimed_names: BTreeSet<&str> = ext
            .map(|x| {
                x.flows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| accepted(*i))
                    .flat_map(|(_, f)| f.aces.iter().map(String::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let free: Vec<&AceRule> = self
            .rules
            .iter()
            .filter(|r| !claimed_names.contains(r.ace.as_str()))
            .collect();

        // Top-level facts: the extension's, else from the MUD container.
        let top = ext.map(|x| &x.profile);
        let get = |k: &str| top.and_then(|t| t.get(k)).cloned();
        let mut sources: Vec<Value> = get("sources")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        let source_ids: BTreeSet<String> = sources
            .iter()
            .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        let doc_id = if source_ids.contains("mud") {
            "mud-file"
        } else {
            "mud"
        };
        let needs_mud_source = top.is_none() || !free.is_empty();
        if needs_mud_source {
            let mut s = json!({
                "id": doc_id,
                "title": format!("MUD file {}", mud.mud_url),
                "url": mud.mud_url,
            });
            let base = std::path::Path::new(&self.file_name)
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default();
            if !base.is_empty() {
                s["file"] = Value::from(base);
            }
            sources.insert(0, s);
            if let Some(sig) = &mud.mud_signature {
                // RFC 8520 section 13: the detached signature of this file; `mud verify` finds
                // it by this URL's last segment next to the file.
                sources.push(json!({"id": "mud-signature", "title": "Signature of the MUD file (RFC 8520 section 13)", "url": sig}));
            }
            if top.is_none() {
                if let Some(d) = &mud.documentation {
                    sources.push(json!({"id": "documentation", "title": "Documentation the MUD file names", "url": d}));
                }
            }
        }
        let cite = json!({"doc": doc_id, "ref": "ietf-mud:mud"});

        // Flows from the extension, then from the free rules.
        let mut flows: Vec<Value> = ext_flows
            .iter()
            .map(|f| Value::Object((*f).clone()))
            .collect();
        let mut flow_ids: BTreeSet<String> = ext_flows
            .iter()
            .filter_map(|f| f.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        let used_eps: BTreeSet<String> = ext_flows
            .iter()
            .flat_map(|f| {
                ["from", "to"]
                    .into_iter()
                    .filter_map(|k| f.get(k).and_then(Value::as_str).map(str::to_string))
            })
            .collect();
        let mut endpoints: Vec<Value> = ext
            .map(|x| {
                x.endpoints
                    .iter()
                    .filter(|e| {
                        e.get("id")
                            .and_then(Value::as_str)
                            .is_some_and(|id| used_eps.contains(id))
                    })
                    .map(|e| Value::Object(e.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut ep_ids: BTreeMap<Peer, String> = BTreeMap::new();
        let mut taken_ep: BTreeSet<String> = endpoints
            .iter()
            .filter_map(|e| e.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        taken_ep.insert("device".into());
        let mut listens_derived = Vec::new();
        for g in group(&free) {
            let Some(reading) = g.reading(&mut notes) else {
                continue;
            };
            let ep = match ep_ids.get(&g.peer) {
                Some(id) => id.clone(),
                None => {
                    let first = g.rules[0];
                    let ecite = json!({"doc": doc_id, "ref": format!("ACL {}, ACE {}", first.acl, first.ace)});
                    let (hint, mut obj) = endpoint_for(&g.peer, &mud.mud_url, &ecite);
                    let id = unique(&hint, &mut taken_ep);
                    obj.insert("id".into(), Value::from(id.clone()));
                    let mut ordered = Map::new();
                    ordered.insert("id".into(), Value::from(id.clone()));
                    ordered.extend(obj.into_iter().filter(|(k, _)| k != "id"));
                    endpoints.push(Value::Object(ordered));
                    ep_ids.insert(g.peer.clone(), id.clone());
                    id
                }
            };
            let (flow, listen) = g.flow(reading, &ep, doc_id, &mut flow_ids, &mut notes);
            if merge_twin(&mut flows[ext_flows.len()..], &flow) {
                continue;
            }
            flows.push(flow);
            if let Some(l) = listen {
                listens_derived.push(l);
            }
        }
        let final_ids: BTreeSet<String> = flows
            .iter()
            .filter_map(|f| f.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();

        let alternatives: Vec<Value> = get("alternatives")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut a| {
                let fl: Vec<Value> = a
                    .get("flows")?
                    .as_array()?
                    .iter()
                    .filter(|f| f.as_str().is_some_and(|s| final_ids.contains(s)))
                    .cloned()
                    .collect();
                if fl.is_empty() {
                    return None;
                }
                a["flows"] = Value::from(fl);
                Some(a)
            })
            .collect();
        let listens = match get("listens") {
            Some(Value::Array(l)) => Value::from(
                l.into_iter()
                    .filter(|e| {
                        e.get("flow")
                            .and_then(Value::as_str)
                            .is_none_or(|f| final_ids.contains(f))
                    })
                    .chain(listens_derived)
                    .collect::<Vec<_>>(),
            ),
            Some(other) if listens_derived.is_empty() => other,
            _ if listens_derived.is_empty() => Value::from("unspecified"),
            _ => Value::from(listens_derived),
        };
        let mut notes_out: Vec<Value> = get("notes")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        if top.is_none() {
            notes_out.push(json!({
                "topic": "other",
                "text": format!(
                    "Imported from the MUD file {} (last-update {}): the flows are read from its access lists, which say what packets may pass rather than who opens a connection; the listens are the ports of the inbound flows it allows.",
                    mud.mud_url, if mud.last_update.is_empty() { "not given" } else { &mud.last_update }
                ),
                "source": [cite],
            }));
        }
        let (id, vendor, product, description, versions) = match top {
            Some(_) => (
                get("id").unwrap_or_else(|| Value::from(profile_id(&mud.mud_url))),
                get("vendor").unwrap_or_else(|| Value::from(vendor(mud))),
                get("product").unwrap_or_else(|| Value::from(product(mud))),
                get("description"),
                get("versions"),
            ),
            None => {
                let mut v = Vec::new();
                if let Some(f) = &mud.firmware_rev {
                    v.push(Value::from(format!("firmware {f}")));
                }
                if let Some(s) = &mud.software_rev {
                    v.push(Value::from(format!("software {s}")));
                }
                (
                    Value::from(profile_id(&mud.mud_url)),
                    Value::from(vendor(mud)),
                    Value::from(product(mud)),
                    mud.systeminfo.clone().map(Value::from),
                    (!v.is_empty()).then(|| Value::from(v)),
                )
            }
        };
        let modes = ext
            .and_then(|x| x.mode.clone())
            .filter(|_| !ext_flows.is_empty())
            .into_iter()
            .collect();
        // The edition is the extension's only while its flows are used: the free rules make
        // first-edition flows, which either edition reads.
        let portolan = get("portolan")
            .filter(|_| !ext_flows.is_empty())
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(1);
        let edition2 = |k: &str| get(k).filter(|_| portolan >= 2);
        let doc = Doc {
            portolan,
            id,
            vendor,
            product,
            versions,
            description,
            sources,
            modes,
            features: get("features"),
            params: get("params"),
            endpoints,
            flows,
            alternatives,
            listens,
            notes: notes_out,
            requirements: edition2("requirements"),
            interfaces: edition2("interfaces"),
        };
        (doc, notes.list)
    }
}
