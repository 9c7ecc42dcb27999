//! Validation and construction of actions from `PUT` bodies, with OpenWhisk's rules and wording.
//! Everything here is pure; the checks that read the store (sequence components) live with the
//! handlers in [`crate::actions`].

use serde_json::{json, Value};
use whirl_model::action::{next_version, ActionLimitsPut, ActionPut};
use whirl_model::limits::Range;
use whirl_model::names::is_valid_name;
use whirl_model::{
    Action, ActionLimits, EntityName, Exec, FullyQualifiedName, ModelError, Params,
    RuntimeManifest, SystemLimits,
};

use crate::error::ApiError;

/// The annotation recording an action's resolved kind.
pub(crate) const EXEC_ANNOTATION: &str = "exec";
/// The annotation deciding whether an action receives the caller's API key.
pub(crate) const PROVIDE_API_KEY: &str = "provide-api-key";
/// The legacy parameter listing a sequence's components.
pub(crate) const SEQUENCE_ACTIONS_PARAM: &str = "_actions";

/// Sequence messages (OpenWhisk's).
pub(crate) const SEQUENCE_TOO_LONG: &str = "Too many actions in the sequence.";
pub(crate) const SEQUENCE_NO_COMPONENT: &str = "No component specified for the sequence.";
pub(crate) const SEQUENCE_CYCLIC: &str = "Sequence may not refer to itself.";
pub(crate) const SEQUENCE_COMPONENT_NOT_FOUND: &str = "Sequence component does not exist.";

/// Parses a `PUT` body; an empty body is an empty update.
pub(crate) fn parse_action_put(body: &[u8]) -> Result<ActionPut, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActionPut::default());
    }
    serde_json::from_slice(body).map_err(ApiError::malformed)
}

/// Counts the bytes a serializer writes.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// OpenWhisk's size of a parameter list: every key plus every value's compact JSON.
pub(crate) fn params_size(p: &Params) -> usize {
    p.0.iter()
        .map(|kv| {
            let mut c = ByteCounter(0);
            let _ = serde_json::to_writer(&mut c, &kv.value);
            kv.key.len() + c.0
        })
        .sum()
}

/// OpenWhisk's size of an exec: code and entry point (and image), as sent.
pub(crate) fn exec_size(e: &Exec) -> usize {
    let code_and_main = e.code().map_or(0, str::len) + e.main().map_or(0, str::len);
    match e {
        Exec::Blackbox { image, .. } => code_and_main + image.len(),
        Exec::Sequence { components } => components.iter().map(String::len).sum(),
        Exec::Code { .. } => code_and_main,
    }
}

/// The 413 checks of a `PUT`, in OpenWhisk's order: exec, parameters, annotations.
pub(crate) fn check_sizes(put: &ActionPut, sys: &SystemLimits) -> Result<(), ApiError> {
    if let Some(e) = &put.exec {
        let is = exec_size(e);
        if is > sys.max_exec_bytes {
            return Err(ApiError::entity_too_big("exec", is, sys.max_exec_bytes));
        }
    }
    for (field, p) in [
        ("parameters", &put.parameters),
        ("annotations", &put.annotations),
    ] {
        if let Some(p) = p {
            let is = params_size(p);
            if is > sys.max_parameter_bytes {
                return Err(ApiError::entity_too_big(field, is, sys.max_parameter_bytes));
            }
        }
    }
    Ok(())
}

fn check_range(
    v: u64,
    r: Range,
    below: impl Fn(u64, u64) -> String,
    above: impl Fn(u64, u64) -> String,
) -> Result<(), ApiError> {
    if v > r.max {
        Err(ApiError::bad_request(above(v, r.max)))
    } else if v < r.min {
        Err(ApiError::bad_request(below(v, r.min)))
    } else {
        Ok(())
    }
}

/// Checks the limits a `PUT` gives against the system ranges, with OpenWhisk's wording
/// (memory, then time, then logs, then concurrency; the maximum is checked before the minimum).
pub(crate) fn check_limits(l: &ActionLimitsPut, sys: &SystemLimits) -> Result<(), ApiError> {
    if let Some(m) = l.memory {
        check_range(
            m,
            sys.memory_mb,
            |v, a| format!("memory size {v} MB below allowed threshold of {a} MB"),
            |v, a| format!("memory size {v} MB exceeds allowed threshold of {a} MB"),
        )?;
    }
    if let Some(t) = l.timeout {
        check_range(
            t,
            sys.timeout_ms,
            |v, a| format!("duration {v} milliseconds below allowed threshold of {a} milliseconds"),
            |v, a| {
                format!("duration {v} milliseconds exceeds allowed threshold of {a} milliseconds")
            },
        )?;
    }
    if let Some(g) = l.logs {
        check_range(
            g,
            sys.logs_mb,
            |v, a| format!("log size {v} MB below allowed threshold of {a} MB"),
            |v, a| format!("log size {v} MB exceeds allowed threshold of {a} MB"),
        )?;
    }
    if let Some(c) = l.concurrency {
        check_range(
            c,
            sys.concurrency,
            |v, a| format!("concurrency {v} below allowed threshold of {a}"),
            |v, a| format!("concurrency {v} exceeds allowed threshold of {a}"),
        )?;
    }
    Ok(())
}

/// A semantic version `major.minor.patch`.
pub(crate) fn check_version(v: &str) -> Result<(), ApiError> {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.parse::<u64>().is_ok())
    {
        Ok(())
    } else {
        Err(ApiError::malformed(format!(
            "'{v}' is not a valid semantic version (major.minor.patch)"
        )))
    }
}

/// The checks of a `PUT` body that need nothing but the body and the system limits.
pub(crate) fn check_put(put: &ActionPut, sys: &SystemLimits) -> Result<(), ApiError> {
    check_sizes(put, sys)?;
    if let Some(p) = &put.parameters {
        p.validate("Parameter").map_err(model_error)?;
    }
    if let Some(a) = &put.annotations {
        a.validate("Annotation").map_err(model_error)?;
    }
    if let Some(v) = &put.version {
        check_version(v)?;
    }
    if let Some(l) = &put.limits {
        check_limits(l, sys)?;
    }
    Ok(())
}

/// A model error as a 400.
pub(crate) fn model_error(e: ModelError) -> ApiError {
    match e {
        ModelError::TooLarge { .. } => ApiError::too_large(e.to_string()),
        e => ApiError::bad_request(e.to_string()),
    }
}

/// OpenWhisk's message for an unknown kind (a malformed request).
fn unknown_kind(kind: &str, manifest: &RuntimeManifest) -> ApiError {
    let mut valid: Vec<&str> = manifest.kinds.iter().map(|k| k.kind.as_str()).collect();
    valid.sort_unstable();
    ApiError::malformed(format!(
        "The specified runtime '{kind}' is not supported by this platform. Valid values are: '{}'.",
        valid.join("', '")
    ))
}

/// Resolves a given exec's kind through the manifest (`family:default` to the family's default),
/// rejecting unknown kinds and deprecated kinds (which may not be created or updated).
pub(crate) fn resolve_exec(exec: Exec, manifest: &RuntimeManifest) -> Result<Exec, ApiError> {
    match exec {
        Exec::Code {
            kind,
            code,
            binary,
            main,
        } => {
            let rk = manifest
                .resolve(&kind)
                .map_err(|_| unknown_kind(&kind, manifest))?;
            if rk.deprecated {
                return Err(ApiError::bad_request(
                    ModelError::DeprecatedKind(rk.kind.clone()).to_string(),
                ));
            }
            Ok(Exec::Code {
                kind: rk.kind.clone(),
                code,
                binary,
                main,
            })
        }
        other => Ok(other),
    }
}

/// Whether an existing action's kind is deprecated (an update that keeps its exec is refused).
pub(crate) fn is_deprecated(exec: &Exec, manifest: &RuntimeManifest) -> bool {
    match exec {
        Exec::Code { kind, .. } => manifest.resolve(kind).is_ok_and(|k| k.deprecated),
        _ => false,
    }
}

/// Parses a sequence's components relative to the caller's namespace (`_` and relative names
/// resolve to it). Whether the caller may use each one is checked against the store.
pub(crate) fn resolve_components(
    components: &[String],
    caller_ns: &EntityName,
) -> Result<Vec<FullyQualifiedName>, ApiError> {
    components
        .iter()
        .map(|c| {
            FullyQualifiedName::parse(c.trim(), caller_ns)
                .map_err(|e| ApiError::malformed(e.to_string()))
        })
        .collect()
}

/// Sets the `exec` annotation to the action's resolved kind (replacing any given value).
fn amend_exec_annotation(annotations: &mut Params, exec: &Exec) {
    annotations.put(EXEC_ANNOTATION, Value::String(exec.kind().to_owned()));
}

fn sequence_parameters(components: &[String]) -> Params {
    let mut p = Params::new();
    p.put(SEQUENCE_ACTIONS_PARAM, json!(components));
    p
}

/// What a new action is built from, besides the `PUT` body.
pub(crate) struct NewAction<'a> {
    /// `ns` or `ns/pkg`.
    pub path: String,
    pub name: String,
    pub sys: &'a SystemLimits,
    pub require_api_key_annotation: bool,
    pub now_ms: u64,
}

/// Builds a new action from a checked `PUT` whose exec is already resolved.
pub(crate) fn new_action(put: ActionPut, ctx: NewAction<'_>) -> Result<Action, ApiError> {
    let exec = put
        .exec
        .ok_or_else(|| ApiError::bad_request("exec undefined"))?;
    let parameters = match &exec {
        Exec::Sequence { components } => sequence_parameters(components),
        _ => put.parameters.unwrap_or_default(),
    };
    let mut annotations = put.annotations.unwrap_or_default();
    if ctx.require_api_key_annotation && annotations.get(PROVIDE_API_KEY).is_none() {
        annotations.put(PROVIDE_API_KEY, Value::Bool(false));
    }
    amend_exec_annotation(&mut annotations, &exec);
    let limits = put
        .limits
        .unwrap_or_default()
        .over(ActionLimits::standard(ctx.sys));
    Ok(Action {
        namespace: ctx.path,
        name: ctx.name,
        version: put.version.unwrap_or_else(|| "0.0.1".into()),
        publish: put.publish.unwrap_or(false),
        exec,
        annotations,
        parameters,
        limits,
        updated: ctx.now_ms,
    })
}

/// Merges a checked `PUT` (exec already resolved) into an existing action, as OpenWhisk does:
/// what is not given is kept, annotations merge key by key, the version's patch is bumped unless
/// given, and a sequence's parameters are its component list.
pub(crate) fn updated_action(put: ActionPut, old: Action, now_ms: u64) -> Action {
    let old_is_sequence = matches!(old.exec, Exec::Sequence { .. });
    let parameters = match &put.exec {
        Some(Exec::Sequence { components }) => sequence_parameters(components),
        Some(_) => put.parameters.unwrap_or_else(|| {
            if old_is_sequence {
                Params::new()
            } else {
                old.parameters.clone()
            }
        }),
        None if old_is_sequence => old.parameters.clone(),
        None => put.parameters.unwrap_or_else(|| old.parameters.clone()),
    };
    let exec = put.exec.unwrap_or(old.exec);
    let mut annotations = match &put.annotations {
        Some(a) => old.annotations.merged(a),
        None => old.annotations,
    };
    amend_exec_annotation(&mut annotations, &exec);
    let limits = match &put.limits {
        Some(l) => l.over(old.limits),
        None => old.limits,
    };
    Action {
        namespace: old.namespace,
        name: old.name,
        version: put.version.unwrap_or_else(|| next_version(&old.version)),
        publish: put.publish.unwrap_or(old.publish),
        exec,
        annotations,
        parameters,
        limits,
        updated: now_ms,
    }
}

/// An action whose containers would run several activations at once (a `limits.concurrency`
/// above one) must be of a kind whose runtime can (`concurrent = true` in the manifest): refused
/// here, at create or update time, rather than surprising at run time. Sequences run in the
/// controller and have no container, so their limit is moot.
pub(crate) fn check_concurrency(
    action: &Action,
    manifest: &RuntimeManifest,
) -> Result<(), ApiError> {
    let n = action.limits.concurrency;
    if n <= 1 || matches!(action.exec, Exec::Sequence { .. }) {
        return Ok(());
    }
    let kind = action.exec.kind();
    if manifest.resolve(kind).is_ok_and(|k| k.concurrent) {
        return Ok(());
    }
    let mut able: Vec<&str> = manifest
        .kinds
        .iter()
        .filter(|k| k.concurrent && !k.deprecated)
        .map(|k| k.kind.as_str())
        .collect();
    able.sort_unstable();
    let supported = if able.is_empty() {
        "none on this platform".to_string()
    } else {
        format!("'{}'", able.join("', '"))
    };
    Err(ApiError::bad_request(format!(
        "concurrency {n} is not supported for kind '{kind}': its runtime runs one activation per \
         container. Kinds that support a concurrency above 1: {supported}."
    )))
}

/// Validates one entity-name path segment.
pub(crate) fn entity_name(segment: &str) -> Result<(), ApiError> {
    if is_valid_name(segment) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            ModelError::InvalidName(segment.to_owned()).to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use whirl_model::manifest::{Launcher, RuntimeKind};

    fn kind(k: &str, default: bool, deprecated: bool) -> RuntimeKind {
        RuntimeKind {
            kind: k.into(),
            default,
            deprecated,
            launcher: Launcher::Python,
            command: None,
            image: None,
            sentinelled_logs: true,
            concurrent: false,
            stem_cells: vec![],
        }
    }

    fn manifest() -> RuntimeManifest {
        RuntimeManifest {
            kinds: vec![
                kind("python:3", true, false),
                kind("python:2", false, true),
                kind("nodejs:20", true, false),
            ],
        }
    }

    fn put(v: Value) -> ActionPut {
        parse_action_put(v.to_string().as_bytes()).unwrap()
    }

    fn ctx(sys: &SystemLimits) -> NewAction<'_> {
        NewAction {
            path: "guest".into(),
            name: "hello".into(),
            sys,
            require_api_key_annotation: true,
            now_ms: 42,
        }
    }

    #[test]
    fn malformed_bodies_are_400_with_pekkos_prefix() {
        let e = parse_action_put(b"{not json").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message
                .starts_with("The request content was malformed:\n"),
            "{}",
            e.message
        );
        assert!(parse_action_put(br#"{"exec":{"kind":"python:3"}}"#).is_err());
        assert!(parse_action_put(br#"{"limits":{"memory":"big"}}"#).is_err());
        assert!(parse_action_put(b"  ").unwrap().exec.is_none());
    }

    #[test]
    fn sizes_are_checked_in_openwhisk_order_and_words() {
        let sys = SystemLimits {
            max_exec_bytes: 10,
            max_parameter_bytes: 8,
            ..SystemLimits::default()
        };
        let p = put(json!({"exec":{"kind":"python:3","code":"0123456789ab"}}));
        let e = check_sizes(&p, &sys).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.message, "exec larger than allowed: 12 > 10 bytes.");
        // key "k" (1) + "\"value\"" (7) = 8 fits; one more byte does not.
        assert!(check_sizes(
            &put(json!({"parameters":[{"key":"k","value":"value"}]})),
            &sys
        )
        .is_ok());
        let e = check_sizes(
            &put(json!({"parameters":[{"key":"k","value":"value1"}]})),
            &sys,
        )
        .unwrap_err();
        assert_eq!(e.message, "parameters larger than allowed: 9 > 8 bytes.");
        let e = check_sizes(
            &put(json!({"annotations":[{"key":"k","value":[1,2,3,4]}]})),
            &sys,
        )
        .unwrap_err();
        assert_eq!(e.message, "annotations larger than allowed: 10 > 8 bytes.");
    }

    #[test]
    fn limits_use_openwhisk_wording() {
        let sys = SystemLimits::default();
        let msg = |l: Value| {
            let p = put(json!({ "limits": l }));
            check_limits(&p.limits.unwrap(), &sys).map_err(|e| (e.status, e.message.into_owned()))
        };
        assert!(msg(json!({"memory": 256, "timeout": 1000, "logs": 0, "concurrency": 1})).is_ok());
        assert_eq!(
            msg(json!({"memory": 64})).unwrap_err(),
            (
                StatusCode::BAD_REQUEST,
                "memory size 64 MB below allowed threshold of 128 MB".into()
            )
        );
        assert_eq!(
            msg(json!({"memory": 1024})).unwrap_err().1,
            "memory size 1024 MB exceeds allowed threshold of 512 MB"
        );
        assert_eq!(
            msg(json!({"timeout": 50})).unwrap_err().1,
            "duration 50 milliseconds below allowed threshold of 100 milliseconds"
        );
        assert_eq!(
            msg(json!({"timeout": 300001})).unwrap_err().1,
            "duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds"
        );
        assert_eq!(
            msg(json!({"logs": 11})).unwrap_err().1,
            "log size 11 MB exceeds allowed threshold of 10 MB"
        );
        assert_eq!(
            msg(json!({"concurrency": 501})).unwrap_err().1,
            "concurrency 501 exceeds allowed threshold of 500"
        );
        assert_eq!(
            msg(json!({"concurrency": 0})).unwrap_err().1,
            "concurrency 0 below allowed threshold of 1"
        );
    }

    #[test]
    fn concurrency_needs_a_concurrent_kind() {
        let manifest: RuntimeManifest = serde_json::from_value(json!({"kinds": [
            {"kind": "python:3", "launcher": "python"},
            {"kind": "nodejs:20", "launcher": "node", "concurrent": true},
        ]}))
        .unwrap();
        let action = |kind: &str, concurrency: u64| {
            let mut a: Action = serde_json::from_value(json!({
                "namespace": "ns", "name": "a", "version": "0.0.1", "publish": false,
                "exec": {"kind": kind, "code": "x"},
                "annotations": [], "parameters": [],
                "limits": {"timeout": 1000, "memory": 256, "logs": 10, "concurrency": 1},
            }))
            .unwrap();
            a.limits.concurrency = concurrency;
            a
        };
        assert!(check_concurrency(&action("nodejs:20", 50), &manifest).is_ok());
        assert!(check_concurrency(&action("python:3", 1), &manifest).is_ok());
        let e = check_concurrency(&action("python:3", 2), &manifest).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "concurrency 2 is not supported for kind 'python:3': its runtime runs one activation \
             per container. Kinds that support a concurrency above 1: 'nodejs:20'."
        );
    }

    #[test]
    fn other_put_checks() {
        let sys = SystemLimits::default();
        assert!(check_put(&put(json!({"version": "1.2.3"})), &sys).is_ok());
        assert!(check_put(&put(json!({"version": "1.2"})), &sys).is_err());
        let e = check_put(
            &put(json!({"parameters": [{"key":"a","value":1},{"key":"a","value":2}]})),
            &sys,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("more than once"));
    }

    #[test]
    fn kinds_resolve_through_the_manifest() {
        let m = manifest();
        let e = resolve_exec(
            put(json!({"exec":{"kind":"python:default","code":"x"}}))
                .exec
                .unwrap(),
            &m,
        )
        .unwrap();
        assert_eq!(e.kind(), "python:3");
        let e = resolve_exec(
            put(json!({"exec":{"kind":"java:8","code":"x"}}))
                .exec
                .unwrap(),
            &m,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "The request content was malformed:\nThe specified runtime 'java:8' is not supported by this platform. Valid values are: 'nodejs:20', 'python:2', 'python:3'."
        );
        let e = resolve_exec(
            put(json!({"exec":{"kind":"python:2","code":"x"}}))
                .exec
                .unwrap(),
            &m,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("deprecated"));
        let bb = resolve_exec(
            put(json!({"exec":{"kind":"blackbox","image":"me/img"}}))
                .exec
                .unwrap(),
            &m,
        )
        .unwrap();
        assert_eq!(bb.kind(), "blackbox");
        assert!(is_deprecated(
            &put(json!({"exec":{"kind":"python:2","code":"x"}}))
                .exec
                .unwrap(),
            &m
        ));
    }

    #[test]
    fn creates_with_defaults_and_annotations() {
        let sys = SystemLimits::default();
        let mut p = put(
            json!({"exec":{"kind":"python:default","code":"def main(a): return a"},
                                "parameters":[{"key":"x","value":1}], "limits": {"memory": 128}}),
        );
        p.exec = Some(resolve_exec(p.exec.take().unwrap(), &manifest()).unwrap());
        let a = new_action(p, ctx(&sys)).unwrap();
        assert_eq!(a.version, "0.0.1");
        assert_eq!(a.namespace, "guest");
        assert_eq!(a.exec.kind(), "python:3");
        assert_eq!(
            a.limits,
            ActionLimits {
                timeout: 60_000,
                memory: 128,
                logs: 10,
                concurrency: 1
            }
        );
        assert_eq!(
            serde_json::to_value(&a.annotations).unwrap(),
            json!([{"key":"provide-api-key","value":false},{"key":"exec","value":"python:3"}])
        );
        assert_eq!(a.updated, 42);
        // A given provide-api-key is kept; a given exec annotation is overridden.
        let p = put(json!({"exec":{"kind":"python:3","code":"x"},
                           "annotations":[{"key":"provide-api-key","value":true},{"key":"exec","value":"lies"}]}));
        let a = new_action(p, ctx(&sys)).unwrap();
        assert_eq!(a.annotations.get("provide-api-key"), Some(&json!(true)));
        assert_eq!(a.annotations.get("exec"), Some(&json!("python:3")));
        let e = new_action(put(json!({})), ctx(&sys)).unwrap_err();
        assert_eq!(e.message, "exec undefined");
    }

    #[test]
    fn updates_merge_like_openwhisk() {
        let sys = SystemLimits::default();
        let old = new_action(
            put(json!({"exec":{"kind":"python:3","code":"old"},"parameters":[{"key":"x","value":1}],
                       "annotations":[{"key":"a","value":1},{"key":"b","value":2}],"limits":{"timeout":1000}})),
            ctx(&sys),
        )
        .unwrap();
        // Nothing given: everything kept, patch bumped.
        let u = updated_action(put(json!({})), old.clone(), 50);
        assert_eq!(u.version, "0.0.2");
        assert_eq!(u.exec, old.exec);
        assert_eq!(u.parameters, old.parameters);
        assert_eq!(u.limits, old.limits);
        assert_eq!(u.updated, 50);
        // Given fields replace; annotations merge by key; limits merge by field.
        let u = updated_action(
            put(
                json!({"exec":{"kind":"nodejs:20","code":"new"},"parameters":[{"key":"y","value":2}],
                       "annotations":[{"key":"b","value":3}],"limits":{"memory":512},"version":"2.0.0"}),
            ),
            old.clone(),
            51,
        );
        assert_eq!(u.version, "2.0.0");
        assert_eq!(u.exec.code(), Some("new"));
        assert_eq!(
            serde_json::to_value(&u.parameters).unwrap(),
            json!([{"key":"y","value":2}])
        );
        assert_eq!(u.annotations.get("a"), Some(&json!(1)));
        assert_eq!(u.annotations.get("b"), Some(&json!(3)));
        assert_eq!(u.annotations.get("exec"), Some(&json!("nodejs:20")));
        assert_eq!(u.limits.timeout, 1000);
        assert_eq!(u.limits.memory, 512);
        // Becoming a sequence: parameters are the component list.
        let u = updated_action(
            put(json!({"exec":{"kind":"sequence","components":["/guest/a"]}})),
            old,
            52,
        );
        assert_eq!(
            serde_json::to_value(&u.parameters).unwrap(),
            json!([{"key":"_actions","value":["/guest/a"]}])
        );
        assert_eq!(u.annotations.get("exec"), Some(&json!("sequence")));
        // A sequence updated without a new exec keeps its component parameters.
        let u2 = updated_action(
            put(json!({"parameters":[{"key":"z","value":0}]})),
            u.clone(),
            53,
        );
        assert_eq!(u2.parameters, u.parameters);
    }

    #[test]
    fn sequence_components_resolve_in_the_callers_namespace() {
        let ns = EntityName::new("guest").unwrap();
        let c =
            resolve_components(&["/_/a".into(), "b".into(), "/guest/pkg/c".into()], &ns).unwrap();
        let names: Vec<String> = c.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["/guest/a", "/guest/b", "/guest/pkg/c"]);
        assert_eq!(
            resolve_components(&["/whisk.system/utils/echo".into()], &ns).unwrap()[0].to_string(),
            "/whisk.system/utils/echo"
        );
        assert_eq!(
            resolve_components(&["/a".into()], &ns).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn entity_names() {
        assert!(entity_name("hello-world").is_ok());
        assert_eq!(
            entity_name("-x").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
