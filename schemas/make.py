"""Writes schemas/<kind>.v1.json, the JSON Schemas (draft 2020-12) of Portolan's `--format json`
documents (README, "JSON contract"), from one description: the shared definitions (diagnostic,
protocol, ports, condition, flow, "no null member") are written into every file so that each
stands alone for editors and validators. Edit this file, then run `python3 schemas/make.py`;
`--check` exits 1 when a file differs from what it would write (crates/cli/tests/json_contract.rs
runs it)."""
import json, os, sys
OUT=os.path.dirname(os.path.abspath(__file__))
BASE='https://portolan.invalid/schemas/'
S=lambda: {"type":"string"}
I=lambda lo=0: {"type":"integer","minimum":lo}
B=lambda: {"type":"boolean"}
A=lambda items=None: ({"type":"array","items":items} if items else {"type":"array"})
O=lambda props, req=(), extra=None: dict({"type":"object","required":list(req),"properties":props}, **(extra or {}))
R=lambda name: {"$ref":"#/$defs/"+name}
common = {
  "diagnostic": O({
      "code": {"type":"string","pattern":"^[a-z0-9]+(-[a-z0-9]+)*$"},
      "severity": {"enum":["error","warning"]},
      "file": S(), "line": I(1), "column": I(1),
      "pointer": {"type":"string","description":"JSON Pointer (RFC 6901) into a JSON input"},
      "message": S(), "help": S()},
      ["code","severity","message"], {"additionalProperties": False}),
  "protocol": {"description":"An IP protocol: IANA number and the name Portolan gives it; `unspecified` where the source leaves it open; a profile param by its id.",
      "oneOf":[{"const":"unspecified"},
        {"type":"object","properties":{"name":S(),"number":{"type":"integer","minimum":0,"maximum":255}},
         "minProperties":1,"additionalProperties":False},
        {"type":"object","required":["param"],"properties":{"param":S()},"additionalProperties":False}]},
  "port_range": O({"lo":{"type":"integer","minimum":0,"maximum":65535},"hi":{"type":"integer","minimum":0,"maximum":65535}},["lo","hi"],{"additionalProperties":False}),
  "ports": {"description":"Port ranges (`{lo, hi}`; one port: lo = hi) and params; `unspecified` where the source leaves them open; absent for a protocol without ports.",
      "oneOf":[{"const":"unspecified"},
        {"type":"array","items":{"oneOf":[{"$ref":"#/$defs/port_range"},
          {"type":"object","required":["param"],"properties":{"param":S()},"additionalProperties":False}]}}]},
  "condition": {"type":"object","minProperties":1,"maxProperties":1,"additionalProperties":False,
      "properties":{"feature":S(),"version":S(),"region":S(),"not":R("condition"),
        "any":A(R("condition")),"all":A(R("condition"))}},
  "citation": O({"doc":S(),"ref":S()},["doc","ref"]),
  "flow": O({
      "id":S(),"from":S(),"to":S(),"initiation":{"enum":["device","peer","either"]},
      "protocol":R("protocol"),"ports":R("ports"),"optional":B(),"modes":A(S()),
      "app":S(),"description":S(),"conditions":A(R("condition")),
      "inside":O({"flow":S(),"port":I()},["flow"]),
      "interface":{"type":"array","items":S(),"minItems":1,"description":"The device's interfaces the flow uses (a multi-homed device)."},
      "source":A(R("citation"))},
      ["id","from","to","initiation","protocol","optional","modes","conditions","source"]),
  "no_null_member": {"description":"No object member is null anywhere (absent, never null).",
      "if":{"type":"object"},
      "then":{"additionalProperties":{"not":{"type":"null"},"$ref":"#/$defs/no_null_member"}},
      "else":{"if":{"type":"array"},"then":{"items":{"$ref":"#/$defs/no_null_member"}}}},
}
def doc(kind, title, props, req, defs=("no_null_member",)):
    p={"format":{"const":"portolan/%s/v1"%kind}}
    p.update(props)
    return {"$schema":"https://json-schema.org/draft/2020-12/schema",
            "$id":BASE+kind+".v1.json",
            "title":title,
            "description":"The document `portolan %s` prints. v1: the keys named here keep their meaning and type; new keys may be added without a version bump (README, \"JSON contract\")."%title.split(':')[0],
            "type":"object","required":["format"]+req,"properties":p,
            "allOf":[R("no_null_member")],
            "$defs":common}
kinds = {}
kinds["error"]=doc("error","any command: a failure (usage, I/O, validation); exit 2",
    {"diagnostics":{"type":"array","minItems":1,"items":R("diagnostic"),
      "contains":{"type":"object","properties":{"severity":{"const":"error"}}}}},["diagnostics"])
kinds["catalog"]=doc("catalog","catalog list",{"profiles":A(O({"id":S(),"vendor":S(),"product":S(),"modes":A(S()),"flows":I(),"origin":S()},["id","vendor","product","modes","flows","origin"]))},["profiles"])
ROUTE=O({"via":{"enum":["direct","proxy","documented","none"]},"proxy":S(),"reason":S()},["via"],
    {"additionalProperties":False,"description":"`show SITE --device D`: how the site's policy carries the flow for that device: directly, through the site's proxy (`proxy`: address:port), documented only (`reason`), or not at all (`reason`: its conditions do not hold, not chosen, replaced, switched off)."})
kinds["show"]=doc("show","show (and catalog show)",{"id":S(),"vendor":S(),"product":S(),"mode":S(),"site":S(),"device":S(),
    "interfaces":A(O({"id":S(),"description":S(),"source":A(R("citation"))},["id","source"])),
    "flows":A({"allOf":[R("flow"),O({"route":ROUTE})]})},["id","vendor","product","flows"])
kinds["doc"]=doc("doc","doc --format json",{"id":S(),"mode":S(),
    "profile":{"type":"object","description":"The profile in the profile file format (`portolan schema profile`)."},
    "flows":A(R("flow"))},["id","profile","flows"])
kinds["validate"]=doc("validate","validate: every file valid (warnings allowed); a file with an error is an error document",
    {"files":A(O({"file":S(),"valid":B(),"diagnostics":A(R("diagnostic"))},["file","valid","diagnostics"]))},["files"])
kinds["compile"]=doc("compile","compile --format json",{
    "site":S(),"target":{"enum":["nftables","iptables","dnsmasq","aerleon","squid","openwrt","ir"]},
    "text":{"type":"string","description":"The emitted policy, when no -o was given."},
    "output":{"type":"string","description":"The file written (-o)."},
    "files":{"type":"array","items":S(),"description":"The files written (-o DIR of a target of several files)."},
    "check":O({"exact":B(),"flows_permitted":I(),"report":{"type":"object","description":"portolan/verify/v1's body"}},["exact","flows_permitted"]),
    "ct_timeouts":O({"raised":A({"type":"object"}),"conntrack":{"type":"object"}},["raised","conntrack"])},
    ["site","target"])
kinds["compile"]["oneOf"]=[{"required":["text"]},{"required":["output"]},{"required":["files"]},{"required":["check"],"properties":{"check":{"properties":{"exact":{"const":False}}}}}]
rule=O({"group":S(),"profile":S(),"flow":S(),"initiator":{"enum":["device","peer","either"]},
    "protocol":{"type":"object","required":["number"],"properties":{"name":S(),"number":{"type":"integer","minimum":0,"maximum":255}},"additionalProperties":False},
    "ports":A(R("port_range")),"src_ports":A(R("port_range")),"icmp_type":S(),"peers":{"type":"object"},
    "broadcast":B(),"multicast":A(S()),"optional":B(),"family":{"enum":["ipv4","ipv6"]},
    "via_proxy":O({"peers":{"type":"object"},"ports":A(R("port_range")),"connect_only":B()},["peers","ports","connect_only"],
      {"description":"The rule is the device's leg to the site's HTTP(S) proxy; these are the flow's own peers and ports, which only the proxy reaches."})},
    ["group","profile","flow","initiator","protocol","ports","src_ports","peers","broadcast","optional"])
kinds["ir"]=doc("ir","compile --target ir: the policy IR",{"site":S(),
    "zones":A(O({"id":S(),"interface":S(),"networks":A(S())},["id","networks"])),
    "groups":A(O({"id":S(),"interface":{"type":"string","description":"The profile's interface this group is: `id` is DEVICE.INTERFACE (a multi-homed device)."},"profile":S(),"mode":S(),"zone":S(),"addresses":A(S())},["id","profile","zone","addresses"])),
    "rules":A(rule),
    "documented":A(O({"group":S(),"profile":S(),"flow":S(),"reason":S()},["group","profile","flow","reason"])),
    "discovered":dict(A(rule),description="Rules to peers learnt from DNS SRV records (their `peers.srv`: the SRV owner names); only the enforce policy and `portolan enforce` open them, per device. Each is also in `documented`.")},
    ["site","zones","groups","rules","documented"])
kinds["lab"]=doc("lab","lab",{"site":S(),"rows":A(O({"device":S(),"flow":S(),"kind":S(),"traffic":S(),"src":S(),"dst":S(),
    "expected":{"enum":["pass","drop"]},"observed":S(),"ok":B(),"detail":S(),"admitted_by":S(),"note":S(),"sent_from":S()},
    ["device","flow","kind","traffic","src","dst","expected","observed","ok"])),
    "summary":O({"probes":I(),"expected_pass":I(),"expected_drop":I(),"matched":I(),"mismatched":I(),"skipped":I(),"seconds":{"type":"number"}},
       ["probes","expected_pass","expected_drop","matched","mismatched","skipped"]),
    "notes":A(S()),"namespaces":A(S()),"kept":B()},["site","rows","summary","notes"])
kinds["apply"]=doc("apply","apply (loaded)",{"scope":S(),"had_previous":B(),"saved":S(),"state_dir":S(),
    "pending":O({"seconds":I(),"deadline":I(),"token":S(),"pid":I()},["seconds","deadline","token"]),
    "stale_deleted":A(S()),"recreated":A(S())},["scope","had_previous","stale_deleted","recreated"])
kinds["apply-diff"]=doc("apply-diff","apply --diff",{"scope":S(),"had_previous":B(),
    "objects_added":A(S()),"objects_removed":A(S()),"objects_recreated":A(S()),"dns_sets_kept":A(S()),
    "rules":A(O({"chain":S(),"change":{"enum":["added","removed"]},"rule":S(),"provenance":S()},["chain","change","rule"])),
    "elements":A(O({"object":S(),"added":A(S()),"removed":A(S())},["object"])),
    "rules_unchanged":I(),"pending":{"type":"object"}},
    ["scope","had_previous","objects_added","objects_removed","rules","elements","rules_unchanged"])
kinds["apply-confirm"]=doc("apply-confirm","apply --confirmed",{"outcome":{"enum":["confirmed","already-confirmed","too-late"]},
    "token":S(),"seconds_ago":I(),"detail":S()},["outcome"])
kinds["enforce-status"]=doc("enforce-status","enforce --status",{"site":S(),"elements":A(O({"set":S(),"device":S(),"peer":S(),"port":dict(I(),description="The peer's port: an element of a peer learnt from a DNS SRV record (`device . peer . port`)."),"group":S(),"flow":S(),"expires":I(),"timeout":I()},["set","device","peer"]))},["site","elements"])
kinds["probe"]=doc("probe","probe",{"site":S(),"device":S(),"profile":S(),"verdict":S(),
    "stages":A(O({"stage":S(),"verdict":S(),"checks":A(O({"kind":S(),"verdict":S(),"detail":S(),"flow":S(),"protocol":R("protocol"),
        "requirement":O({"index":I(),"kind":{"enum":["addressing","link","credentials","dns"]},"text":S(),"source":A(R("citation"))},["index","kind","text","source"],
            {"description":"The profile requirement (edition 2, `requirements[index]`) a check of the `requirements` stage is about."}),
        "dhcp_option":{"type":"integer","minimum":1,"maximum":254,"description":"The DHCP option code (RFC 2132) a `dhcp-option` check is about."}},["kind","verdict"]))},["stage","verdict"])),
    "remedies":A(S())},["device","profile","stages","verdict"])
# A scanned port's protocol: the contract's protocol object, TCP or UDP only.
SCAN_PROTO={"description":"The port's protocol, as everywhere: {\"name\", \"number\"}; a scan knows TCP and UDP.",
    "oneOf":[{"const":{"name":"tcp","number":6}},{"const":{"name":"udp","number":17}}]}
PORT_STATE={"enum":["open","closed","filtered","open|filtered"]}
kinds["scan"]=doc("scan","scan",{"device":S(),"profile":S(),"from_zone":S(),"target":S(),"source":S(),"method":S(),
    "ports":A(O({"protocol":SCAN_PROTO,"port":I(),"state":PORT_STATE},["protocol","port","state"])),
    "declared":O({"listens":{"enum":["none","unspecified","entries"]},"entries":A(O({"protocol":SCAN_PROTO,"entry":S(),"coverage":{"type":"object"},"loopback":dict(B(),description="The entry says `bind: loopback`: its ports must not answer from the network (finding `loopback-exposed`).")},["entry","coverage"]))},["listens"]),
    "statements":A({"type":"object"}),
    "findings":A(O({"severity":{"enum":["error","warning"]},"code":S(),"protocol":SCAN_PROTO,"port":I(),"last_port":I(),"message":S()},["severity","code","protocol","port","message"])),
    "summary":A(O({"protocol":SCAN_PROTO,"state":PORT_STATE,"count":I(),"reason":S()},["protocol","state","count"])),
    "not_shown":A(O({"protocol":SCAN_PROTO,"state":PORT_STATE,"count":I(),"reason":S()},["protocol","state","count"]))},
    ["profile","target","source","ports","declared","findings"])
kinds["mud-export"]=doc("mud-export","mud export --format json",{"profile":S(),"mode":S(),"interface":S(),"mud_url":S(),"aces":I(),
    "unexpressed":A(S()),"warnings":A(R("diagnostic")),"output":S(),
    "mud":{"type":"object","description":"The MUD file (RFC 8520), unless -o; its own JSON (YANG `empty` leaves are [null])."}},
    ["profile","mud_url","aces","unexpressed","warnings"])
kinds["mud-import"]=doc("mud-import","mud import --format json",{"file":S(),"strict":B(),"profile_id":S(),"flows":I(),"extension_used":B(),
    "warnings":A(R("diagnostic")),"output":S(),
    "profile":{"type":"object","required":["portolan","id","flows"],"description":"The profile in the profile file format (`portolan schema profile`), unless -o."}},
    ["file","strict","profile_id","flows","extension_used","warnings"])
kinds["mud-verify"]=doc("mud-verify","mud verify --format json (exit 0 verified, 1 refused)",{"file":S(),"verified":B(),
    "signer":O({"signer":S(),"digest":S(),"signed_attributes":B(),"chain":A(S())},["signer","chain"]),"reason":S()},["file","verified"])
kinds["learn"]=doc("learn","learn --format json",{"device":S(),"inputs":A(S()),"flows":I(1),"peers":I(),"output":S(),
    "profile":{"type":"object","required":["portolan","id","flows"],"description":"The draft in the profile file format (`portolan schema profile`), unless -o."}},
    ["device","inputs","flows","peers"])
kinds["verify"]=doc("verify","verify",{"site":S(),
    "flows":A(O({"group":S(),"flow":S(),"status":{"enum":["permitted","partly","blocked","depends"]},"optional":B(),
        "rules":A(O({"chain":S(),"line":I(),"text":S()},["chain","text"])),"findings":A(O({"class":S(),"outcome":S()},["class","outcome"]))},["group","flow","status","rules","findings"])),
    "excess":A({"type":"object"}),"notes":A({"type":"object"})},["site","flows","excess","notes"])
kinds["lint"]=doc("lint","lint --format json",{"targets":A(O({"target":S(),
    "findings":A(O({"code":S(),"level":{"enum":["note","warning","error"]},"reason":S(),"remedy":S(),"file":S(),"line":I(),"column":I(),
        "device":S(),"profile":S(),"flow":S(),"citations":A(O({"standard":S(),"section":S(),"url":S()},["standard"]))},["code","level","reason"])),
    "accepted":A({"type":"object"}),"notes":A({"type":"object"})},["target","findings"]))},["targets"])
kinds["report"]=doc("report","report -o FILE --format json",{"site":S(),"bytes":I(),"groups":I(),"flows":I(),"green":I(),"red":I(),"grey":I(),
    "red_flows":A(S()),"red_notes":I(),"sources":A(S()),"collapsed":B()},["site","bytes","groups","flows","green","red","grey","red_flows","red_notes","sources"])
rule=O({"group":S(),"profile":S(),"flow":S(),"initiator":{"enum":["device","peer"]}},["group","profile","flow","initiator"],{"additionalProperties":False})
kinds["explain"]=doc("explain","explain SITE PACKET --format json: which flow admits one packet that opens a connection, or why none does",{
    "site":S(),
    "packet":O({"protocol":{"type":"object","properties":{"name":S(),"number":{"type":"integer","minimum":0,"maximum":255}},"minProperties":1,"additionalProperties":False},
        "src":S(),"sport":{"type":"integer","minimum":0,"maximum":65535},"dst":S(),"dport":{"type":"integer","minimum":0,"maximum":65535},"local":B()},
        ["protocol","src","dst","local"],{"additionalProperties":False}),
    "verdict":{"enum":["accept","drop","depends"]},"hook":{"enum":["forward","input"]},
    "source_group":S(),"destination_group":S(),"rule":rule,"reason":S(),
    "near_misses":A(O({"rule":rule,"because":S()},["rule","because"],{"additionalProperties":False}))},
    ["site","packet","verdict","hook","reason","near_misses"])
# JSON lines
def lines(kind, title, variants):
    return {"$schema":"https://json-schema.org/draft/2020-12/schema","$id":BASE+kind+".v1.json","title":title,
      "description":"`portolan %s --format json` writes JSON lines: this schema describes ONE line. The first line is the header {\"format\": \"portolan/%s/v1\", \"type\": \"header\"}. v1: the keys named here keep their meaning and type; new keys and new line types may be added without a version bump."%(title,kind),
      "type":"object","allOf":[R("no_null_member")],
      "oneOf":[O({"format":{"const":"portolan/%s/v1"%kind},"type":{"const":"header"}},["format","type"])]+variants,
      "$defs":common}
audit_proto={"type":"object","properties":{"name":S(),"number":{"type":"integer","minimum":0,"maximum":255}},"minProperties":1,"additionalProperties":False}
audit_flow=O({"type":{"const":"flow"},"status":{"enum":["conforming","violation","unknown-device"]},"group":S(),"rule":S(),"violation":A(S()),
     "protocol":audit_proto,"src":S(),"dst":S(),"sport":I(),"dport":I()},["type","status","protocol","src","dst"])
kinds["audit"]=lines("audit","audit",[
  audit_flow,
  O({"type":{"const":"group"},"group":S(),"profile":S(),"mode":S(),"conforming":I(),"violations":I(),"unused":A(S()),"unused_optional":A(S())},["type","group","profile","conforming","violations","unused"]),
  O({"type":{"const":"summary"},"site":S(),"flows":I(),"conforming":I(),"violations":I(),"unknown_device":I(),"inputs":A({"type":"object"}),"frames":{"type":"object"}},["type","site","flows","conforming","violations","unknown_device"]),
  O({"type":{"const":"period"},"flows":I(),"conforming":I(),"violations":I(),"unknown_device":I()},["type","flows","violations"]),
  O({"type":{"const":"live-summary"}},["type"]),
  O({"type":{"const":"kafka-worker"},"records":I(),"flows":I(),"conforming":I(),"findings":I(),"dead_letters":I(),"windows":I(),"revoked":I()},
    ["type","records","flows","conforming","findings","dead_letters","windows","revoked"]),
  O({"type":{"const":"forwarded"},"datagrams":I(),"refused":I(),"first_refusal":S(),"records":I(),"skipped":I()},
    ["type","datagrams","refused","records","skipped"]),
])
# One Kafka message of `audit --from`: each stands alone, so each carries the format.
kinds["audit-kafka"]={"$schema":"https://json-schema.org/draft/2020-12/schema","$id":BASE+"audit-kafka.v1.json",
  "title":"audit --from kafka://...: one message of the findings or dead-letter topic",
  "description":"`portolan audit SITE --from kafka://BROKERS/TOPIC` produces one JSON object per Kafka message: findings (keyed SITE/DEVICE, de-duplicate by `id`) to --findings, unreadable records to --dead-letter. Each message names its format. v1: the keys named here keep their meaning and type; new keys and new `finding` values may be added without a version bump.",
  "type":"object","allOf":[R("no_null_member")],
  "oneOf":[
    O({"format":{"const":"portolan/audit-kafka/v1"},"type":{"const":"finding"},"finding":{"enum":["violation","unknown-device"]},
       "id":{"type":"string","pattern":"^[0-9a-f]{32}$"},"site":S(),"partition":I(),"flow":audit_flow},
      ["format","type","finding","id","site","partition","flow"]),
    O({"format":{"const":"portolan/audit-kafka/v1"},"type":{"const":"finding"},"finding":{"const":"unused"},
       "id":{"type":"string","pattern":"^[0-9a-f]{32}$"},"site":S(),"partition":I(),"group":S(),"rule":S(),
       "offsets":{"type":"array","items":I(),"minItems":2,"maxItems":2}},
      ["format","type","finding","id","site","partition","group","rule","offsets"]),
    O({"format":{"const":"portolan/audit-kafka/v1"},"type":{"const":"dead-letter"},"topic":S(),"partition":I(),"offset":I(),
       "key":S(),"reason":S(),"value_hex":{"type":"string","pattern":"^([0-9a-f]{2})*$"}},
      ["format","type","topic","partition","offset","key","reason","value_hex"]),
  ],
  "$defs":common}
kinds["enforce"]=lines("enforce","enforce",[O({"event":S(),"ts":{"type":"number"}},["event"])])
check = "--check" in sys.argv[1:]
drift = []
for k, v in sorted(kinds.items()):
    path = os.path.join(OUT, k + ".v1.json")
    text = json.dumps(v, indent=2) + "\n"
    if check:
        try:
            with open(path) as f:
                same = f.read() == text
        except OSError:
            same = False
        if not same:
            drift.append(path)
    else:
        with open(path, "w") as f:
            f.write(text)
if drift:
    print("schemas differ from schemas/make.py: " + ", ".join(drift), file=sys.stderr)
    sys.exit(1)
