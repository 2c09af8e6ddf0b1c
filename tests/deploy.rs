//! The deployment's wiring, checked on the manifests exactly as Kubernetes would receive
//! them: `kubectl kustomize` renders kustomization.yaml, and the rendered objects are checked
//! against each other and against the agent binary itself (its `--help`, its routes, its
//! configuration parser); README, "Deployment".
//!
//! Needs `kubectl` (with its built-in kustomize; any version since 1.14), no cluster. The
//! project has no YAML parser, so the rendered YAML is turned into JSON by kubectl too:
//! `kubectl label --local -o json` reads objects from a file and prints them without
//! contacting a server; removing a label no object has leaves the objects as they were.
//! `scripts/check-deploy` installs kubectl when it is missing and also validates the objects
//! against the Kubernetes schemas.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The agent's non-root user in the image and the pod.
const NONROOT_UID: i64 = 65532;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kubectl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = match Command::new("kubectl")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "\n\ncannot run kubectl ({e}).\nThese tests render kustomization.yaml with \
             `kubectl kustomize` (no cluster needed): install kubectl, e.g. run \
             scripts/check-deploy, which installs it from Debian's packages when missing.\n"
        ),
    };
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("kubectl stdin");
        pipe.write_all(input).expect("cannot write to kubectl");
    }
    let output = child.wait_with_output().expect("kubectl did not finish");
    assert!(
        output.status.success(),
        "kubectl {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Every object `kubectl kustomize` renders, as JSON.
fn rendered() -> Vec<Value> {
    let dir = repo().to_string_lossy().to_string();
    as_json(&kubectl(&["kustomize", &dir], None))
}

/// The objects rendered with one optional component of `deploy/components/` enabled, the way
/// a user enables it (`components:` in kustomization.yaml), from an overlay outside the tree.
fn rendered_with(component: &str) -> Vec<Value> {
    let overlay = std::env::temp_dir().join(format!("deploy-{component}-{}", std::process::id()));
    std::fs::create_dir_all(&overlay).expect("overlay directory");
    let up = overlay
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .map(|_| "..")
        .collect::<Vec<_>>()
        .join("/");
    let repo = format!("{up}{}", repo().display());
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!("resources:\n  - {repo}\ncomponents:\n  - {repo}/deploy/components/{component}\n"),
    )
    .expect("overlay");
    let dir = overlay.to_string_lossy().to_string();
    let yaml = kubectl(
        &["kustomize", "--load-restrictor=LoadRestrictionsNone", &dir],
        None,
    );
    let _ = std::fs::remove_dir_all(&overlay);
    as_json(&yaml)
}

fn as_json(yaml: &[u8]) -> Vec<Value> {
    let json = kubectl(
        &[
            "label",
            "--local",
            "-f",
            "-",
            "-o",
            "json",
            "prometheus-agent.invalid/no-such-label-",
        ],
        Some(yaml),
    );
    let mut objects = Vec::new();
    for value in serde_json::Deserializer::from_slice(&json).into_iter::<Value>() {
        let value = value.expect("kubectl printed invalid JSON");
        match value["kind"].as_str() {
            Some("List") => objects.extend(value["items"].as_array().cloned().unwrap_or_default()),
            _ => objects.push(value),
        }
    }
    objects
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, got {found:#?}"
    );
    found[0]
}

fn labels(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether every label of `selector` is on `pod` (and the selector selects something).
fn selects(selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

fn agent_help() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_prometheus-agent"))
        .arg("--help")
        .output()
        .expect("cannot run the agent binary");
    assert!(output.status.success(), "--help failed: {output:?}");
    String::from_utf8(output.stdout).expect("--help is UTF-8")
}

/// The variables `--help` lists, with their defaults where given on the variable's line.
/// A variable is the first word of a line in the "Configuration (environment)" section, or a
/// word with an underscore in it there (aliases, POD_NAMESPACE).
fn help_variables(help: &str) -> BTreeMap<String, Option<String>> {
    let is_name = |w: &str| {
        w.len() > 1
            && w.starts_with(|c: char| c.is_ascii_uppercase())
            && w.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    let mut vars = BTreeMap::new();
    let mut in_section = false;
    for line in help.lines() {
        if line.starts_with("Configuration (environment)") {
            in_section = true;
            continue;
        }
        if !in_section {
            continue;
        }
        if line.trim().is_empty() {
            break;
        }
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || "()[],".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        if let Some(first) = words
            .first()
            .filter(|w| is_name(w) && line.starts_with("  "))
        {
            let default = line
                .trim_end()
                .strip_suffix(']')
                .and_then(|l| l.rsplit_once('['))
                .map(|(_, d)| d.to_string());
            vars.insert(first.to_string(), default);
        }
        for word in words.iter().filter(|w| is_name(w) && w.contains('_')) {
            vars.entry(word.to_string()).or_insert(None);
        }
    }
    vars
}

/// A port number, or the name of one of the container's ports, as a number.
fn resolve_port(port: &Value, container: &Value) -> Option<i64> {
    if let Some(n) = port.as_i64() {
        return Some(n);
    }
    let name = port.as_str()?;
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_i64())
}

/// Mebibytes or millicores from a Kubernetes quantity (the forms these manifests use).
fn quantity(q: &Value) -> f64 {
    let s = q
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| q.to_string());
    let (number, factor) = if let Some(n) = s.strip_suffix("Mi") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("Gi") {
        (n, 1024.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1.0)
    } else {
        (s.as_str(), 1000.0)
    };
    number
        .parse::<f64>()
        .map(|n| n * factor)
        .unwrap_or_else(|_| panic!("unsupported quantity {s:?}"))
}

struct Rendered {
    objects: Vec<Value>,
}

impl Rendered {
    fn new() -> Rendered {
        Rendered {
            objects: rendered(),
        }
    }
    fn deployment(&self) -> &Value {
        one(&self.objects, "Deployment")
    }
    fn pod(&self) -> &Value {
        &self.deployment()["spec"]["template"]
    }
    fn container(&self) -> &Value {
        let containers = self.pod()["spec"]["containers"]
            .as_array()
            .expect("containers");
        assert_eq!(containers.len(), 1, "one container: {containers:#?}");
        &containers[0]
    }
    fn pod_labels(&self) -> BTreeMap<String, String> {
        labels(&self.pod()["metadata"]["labels"])
    }
    fn config_map(&self) -> &Value {
        one(&self.objects, "ConfigMap")
    }
}

#[test]
fn objects_names_and_namespace() {
    let r = Rendered::new();
    let kinds: BTreeSet<&str> = r
        .objects
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "Deployment", "NetworkPolicy", "Service"]),
        "{:#?}",
        r.objects
    );
    assert_eq!(r.deployment()["metadata"]["name"], "prometheus-agent");
    assert_eq!(
        one(&r.objects, "Service")["metadata"]["name"],
        "prometheus-agent"
    );
    let namespaces: BTreeSet<&str> = r
        .objects
        .iter()
        .map(|o| o["metadata"]["namespace"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(namespaces.len(), 1, "one namespace for all: {namespaces:?}");
    assert!(!namespaces.contains(""), "kustomization sets `namespace`");
    assert_eq!(r.deployment()["spec"]["replicas"], 1);
    let selector = labels(&r.deployment()["spec"]["selector"]["matchLabels"]);
    assert!(selects(&selector, &r.pod_labels()), "{selector:?}");
    // The `images` entry of kustomization.yaml rewrote the Deployment's `prometheus-agent`.
    let image = r.container()["image"].as_str().expect("image");
    assert_ne!(
        image, "prometheus-agent",
        "kustomize `images` did not apply"
    );
    assert!(
        image.ends_with("/prometheus-agent") || image.contains("/prometheus-agent:"),
        "{image}"
    );
}

#[test]
fn service_selects_the_pod_and_reaches_the_agents_port() {
    let r = Rendered::new();
    let help = help_variables(&agent_help());
    let default_port: i64 = help
        .get("PORT")
        .cloned()
        .flatten()
        .and_then(|p| p.parse().ok())
        .expect("--help gives PORT's default");
    assert_eq!(default_port, 8000);

    let service = one(&r.objects, "Service");
    let selector = labels(&service["spec"]["selector"]);
    assert!(
        selects(&selector, &r.pod_labels()),
        "Service selector {selector:?} must be part of the pod labels {:?}",
        r.pod_labels()
    );
    let ports = service["spec"]["ports"].as_array().expect("service ports");
    assert_eq!(ports.len(), 1, "{ports:#?}");
    assert_eq!(ports[0]["name"], "http");
    assert_eq!(ports[0]["port"], 8000, "kubectl port-forward svc/... 8000");
    let target = resolve_port(&ports[0]["targetPort"], r.container());
    assert_eq!(target, Some(default_port), "targetPort {}", ports[0]);

    let container_ports = r.container()["ports"].as_array().expect("ports");
    assert_eq!(container_ports.len(), 1, "{container_ports:#?}");
    assert_eq!(container_ports[0]["name"], "http");
    assert_eq!(container_ports[0]["containerPort"], default_port);
    // Nothing in the environment moves the agent off its default port.
    let env: Vec<&str> = r.container()["env"]
        .as_array()
        .map(|e| e.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    let data = r.config_map()["data"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for var in ["PORT", "LISTEN_ADDR"] {
        assert!(
            !env.contains(&var) && !data.contains_key(var),
            "{var} is set"
        );
    }
}

#[test]
fn environment_is_what_the_agent_reads() {
    let r = Rendered::new();
    let known = help_variables(&agent_help());
    for var in [
        "PROMETHEUS_URL",
        "POD_NAMESPACE",
        "UPDATE_INTERVAL",
        "WINDOW",
        "BUFFER_SIZE",
    ] {
        assert!(
            known.contains_key(var),
            "--help does not list {var}: {known:?}"
        );
    }

    // ConfigMap through envFrom, under the generated (hash-suffixed) name.
    let cm = r.config_map();
    let cm_name = cm["metadata"]["name"].as_str().expect("ConfigMap name");
    assert!(cm_name.starts_with("prometheus-agent-"), "{cm_name}");
    let env_from = r.container()["envFrom"].as_array().expect("envFrom");
    assert_eq!(env_from.len(), 1, "{env_from:#?}");
    assert_eq!(env_from[0]["configMapRef"]["name"], cm_name);
    let data = cm["data"].as_object().expect("ConfigMap data");
    let keys: BTreeSet<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["BUFFER_SIZE", "PROMETHEUS_URL", "UPDATE_INTERVAL", "WINDOW"])
    );
    for (key, value) in data {
        let value = value.as_str().expect("ConfigMap values are strings");
        assert!(known.contains_key(key), "{key} is no variable of the agent");
        if key == "PROMETHEUS_URL" {
            assert!(value.starts_with("http://") || value.starts_with("https://"));
        } else {
            // The agent's own defaults, so that the ConfigMap shows them for editing.
            assert_eq!(
                Some(value.to_string()),
                known[key.as_str()],
                "{key} differs from --help's default"
            );
        }
    }

    // POD_NAMESPACE from the downward API; nothing else that the agent does not read.
    let env = r.container()["env"].as_array().expect("env");
    for var in env {
        let name = var["name"].as_str().expect("env name");
        assert!(
            known.contains_key(name),
            "{name} is no variable of the agent"
        );
    }
    let pod_namespace = env
        .iter()
        .find(|v| v["name"] == "POD_NAMESPACE")
        .expect("POD_NAMESPACE is set");
    assert_eq!(
        pod_namespace["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert!(
        pod_namespace.get("value").is_none(),
        "POD_NAMESPACE must come from the downward API"
    );
}

#[test]
fn pod_is_locked_down() {
    let r = Rendered::new();
    let spec = &r.pod()["spec"];
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_ne!(spec["hostNetwork"], true);

    let pod_sc = &spec["securityContext"];
    let sc = &r.container()["securityContext"];
    let effective = |field: &str| {
        if sc[field].is_null() {
            pod_sc[field].clone()
        } else {
            sc[field].clone()
        }
    };
    assert_eq!(effective("runAsNonRoot"), true);
    assert_eq!(effective("runAsUser"), NONROOT_UID);
    assert_eq!(pod_sc["runAsNonRoot"], true);
    assert_eq!(pod_sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(effective("seccompProfile")["type"], "RuntimeDefault");
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_ne!(sc["privileged"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(sc["capabilities"]["add"].is_null(), "no capability added");

    let resources = &r.container()["resources"];
    for what in ["cpu", "memory"] {
        let request = quantity(&resources["requests"][what]);
        let limit = quantity(&resources["limits"][what]);
        assert!(request > 0.0 && limit >= request, "{what}: {resources}");
    }
    // Measured peak resident memory was about 12.5 MiB; the limit keeps ample headroom.
    let memory_limit = quantity(&resources["limits"]["memory"]);
    assert!((32.0..=256.0).contains(&memory_limit), "{resources}");
}

#[test]
fn network_policy_denies_all_ingress_to_the_pod() {
    let r = Rendered::new();
    let policy = one(&r.objects, "NetworkPolicy");
    let selector = labels(&policy["spec"]["podSelector"]["matchLabels"]);
    assert!(
        selects(&selector, &r.pod_labels()),
        "podSelector {selector:?} must select the agent's pod {:?}",
        r.pod_labels()
    );
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress"])
    );
    let ingress = &policy["spec"]["ingress"];
    assert!(
        ingress.is_null() || ingress.as_array().is_some_and(|rules| rules.is_empty()),
        "no ingress rule: {ingress}"
    );
}

#[test]
fn marks_are_kept_on_a_writable_volume() {
    let r = Rendered::new();
    let env = r.container()["env"].as_array().expect("env");
    let file = env
        .iter()
        .find(|v| v["name"] == "MARKS_FILE")
        .and_then(|v| v["value"].as_str())
        .expect("MARKS_FILE is set");
    let mounts = r.container()["volumeMounts"]
        .as_array()
        .expect("volumeMounts");
    let mount = mounts
        .iter()
        .find(|m| {
            m["mountPath"]
                .as_str()
                .is_some_and(|p| file.starts_with(&format!("{p}/")))
        })
        .unwrap_or_else(|| panic!("{file} is on no volume, and the root filesystem is read-only"));
    assert_ne!(mount["readOnly"], true);
    let volumes = r.pod()["spec"]["volumes"].as_array().expect("volumes");
    let volume = volumes
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    // Survives a container restart (the pod's own volume), needs no storage class.
    assert!(volume["emptyDir"].is_object(), "{volume}");
}

#[test]
fn optional_components_let_prometheus_scrape_the_agents_metrics_and_nobody_else() {
    let help = agent_help();
    assert!(help.contains("/agent/metrics"), "{help}");
    let port = |r: &Rendered| {
        let ports = r.container()["ports"].as_array().expect("ports").clone();
        (
            ports[0]["name"].as_str().unwrap_or_default().to_string(),
            ports[0]["containerPort"].clone(),
        )
    };
    // Annotations for the prometheus-community chart.
    let r = Rendered {
        objects: rendered_with("scrape-annotations"),
    };
    let (_, container_port) = port(&r);
    let annotations = &r.pod()["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/agent/metrics");
    assert_eq!(
        annotations["prometheus.io/port"],
        container_port.to_string()
    );
    check_scrape_policy(&r, &container_port);
    // A PodMonitor for kube-prometheus-stack.
    let r = Rendered {
        objects: rendered_with("podmonitor"),
    };
    let (port_name, container_port) = port(&r);
    let monitor = one(&r.objects, "PodMonitor");
    let selector = labels(&monitor["spec"]["selector"]["matchLabels"]);
    assert!(selects(&selector, &r.pod_labels()), "{selector:?}");
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["port"], port_name.as_str());
    assert_eq!(endpoint["path"], "/agent/metrics");
    check_scrape_policy(&r, &container_port);
}

/// Besides the policy that denies every ingress, one opens the agent's port to one
/// namespace's pods (Prometheus's), and nothing else.
fn check_scrape_policy(r: &Rendered, container_port: &Value) {
    let policies: Vec<&Value> = r
        .objects
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .collect();
    assert_eq!(policies.len(), 2, "{policies:#?}");
    let open = policies
        .iter()
        .find(|p| {
            p["spec"]["ingress"]
                .as_array()
                .is_some_and(|i| !i.is_empty())
        })
        .expect("a policy with an ingress rule");
    assert!(selects(
        &labels(&open["spec"]["podSelector"]["matchLabels"]),
        &r.pod_labels()
    ));
    let rules = open["spec"]["ingress"].as_array().expect("ingress");
    assert_eq!(rules.len(), 1, "{rules:#?}");
    assert_eq!(
        rules[0]["ports"],
        serde_json::json!([{"protocol": "TCP", "port": container_port}])
    );
    let from = rules[0]["from"].as_array().expect("from");
    assert!(
        from.len() == 1 && from[0]["namespaceSelector"]["matchLabels"].is_object(),
        "only one namespace may connect: {from:#?}"
    );
}

#[test]
fn dockerfile_matches_the_pod() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let instructions: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(i, rest)| (i.to_ascii_uppercase(), rest.trim().to_string()))
        .collect();
    let froms: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (i, _))| i == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert!(froms.len() >= 2, "multi-stage build: {froms:?}");
    let last = &instructions[froms[froms.len() - 1]..];
    let base = &last[0].1;
    assert!(
        base == "scratch" || base.starts_with("gcr.io/distroless/static"),
        "final image {base}"
    );
    let value = |name: &str| {
        last.iter()
            .find(|(i, _)| i == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("final stage has no {name}"))
    };
    let user = value("USER");
    let uid: i64 = user
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("USER {user:?} must be numeric for runAsNonRoot"));
    assert_eq!(uid, NONROOT_UID);
    assert_eq!(value("EXPOSE"), "8000");
    assert!(value("ENTRYPOINT").contains("prometheus-agent"));
}

/// GET `path`; the status code.
fn http_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line: {line:?}"))
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn probes_hit_routes_the_agent_serves_with_the_deployed_configuration() {
    let r = Rendered::new();
    let container = r.container();
    let liveness = &container["livenessProbe"]["httpGet"];
    let readiness = &container["readinessProbe"]["httpGet"];
    assert_eq!(liveness["path"], "/livez");
    assert_eq!(readiness["path"], "/readyz");
    for probe in [liveness, readiness] {
        assert_eq!(
            resolve_port(&probe["port"], container),
            Some(8000),
            "{probe}"
        );
    }

    // The agent with the pod's environment: the ConfigMap, POD_NAMESPACE as the downward API
    // would set it, and only the listen address and Prometheus moved to loopback (a closed
    // port, so /readyz reports the failure instead of data).
    let namespace = r.deployment()["metadata"]["namespace"]
        .as_str()
        .expect("namespace");
    let mut command = Command::new(env!("CARGO_BIN_EXE_prometheus-agent"));
    for var in help_variables(&agent_help()).keys() {
        command.env_remove(var);
    }
    for (key, value) in r.config_map()["data"].as_object().expect("data") {
        command.env(key, value.as_str().unwrap_or_default());
    }
    let port = |listener: std::io::Result<TcpListener>| {
        listener
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
    };
    let closed = port(TcpListener::bind("127.0.0.1:0"));
    let addr = port(TcpListener::bind("127.0.0.1:0"));
    command
        .env("POD_NAMESPACE", namespace)
        .env("PROMETHEUS_URL", format!("http://{closed}"))
        .env("LISTEN_ADDR", addr.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut agent = Agent(command.spawn().expect("cannot start the agent"));

    let deadline = Instant::now() + Duration::from_secs(20);
    let live = loop {
        if let Ok(Some(status)) = agent.0.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = agent.0.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("the agent rejected the deployed configuration ({status}):\n{stderr}");
        }
        match http_status(addr, "/livez") {
            Ok(code) => break code,
            Err(e) if Instant::now() > deadline => panic!("agent not serving: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert_eq!(live, 200, "liveness probe path");
    let path = |v: &Value| v.as_str().unwrap_or_default().to_string();
    assert_eq!(http_status(addr, &path(&liveness["path"])), Ok(200));
    // Prometheus is a closed port: not ready, whether or not the first cycle has failed yet.
    let ready = http_status(addr, &path(&readiness["path"])).expect("readiness answer");
    assert_eq!(ready, 503, "readiness probe path");
    // Not a catch-all: an unknown path is 404.
    assert_eq!(http_status(addr, "/no-such-probe"), Ok(404));
}
