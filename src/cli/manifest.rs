//! Reads the files a user would `kubectl apply`: one `RemoteReindex` (or one `Migration`) plus the
//! Secrets and ConfigMaps it references. Unknown fields are errors, not silently dropped: each is
//! named by its path with the closest known field of its object (from the CRD's schema), and a
//! value of the wrong type by its field path. The API types themselves accept unknown fields (the
//! operator must read objects a newer CRD wrote); only this loader refuses them.

use crate::api::{Migration, RemoteReindex};
use crate::workflow::{ConfigKind, SecretError, SecretSource};
use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Invalid input (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

/// The parsed manifests: one resource of type `R` and the Secrets/ConfigMaps beside it. `Debug`
/// names the Secrets and ConfigMaps and their keys, never a value.
pub struct Manifests<R = RemoteReindex> {
    /// The one `RemoteReindex` (for `Manifests<Migration>`, the one `Migration`; the field keeps
    /// its first name so that callers of the single-copy loader are unchanged).
    pub reindex: R,
    /// Its namespace (`default` when unset).
    pub namespace: String,
    objects: BTreeMap<(Kind, String, String), BTreeMap<String, Vec<u8>>>,
}

impl<R: std::fmt::Debug> std::fmt::Debug for Manifests<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let objects: Vec<String> = self
            .objects
            .iter()
            .map(|((kind, ns, name), data)| {
                let keys: Vec<&str> = data.keys().map(String::as_str).collect();
                format!("{kind:?} {ns}/{name} keys [{}]", keys.join(", "))
            })
            .collect();
        f.debug_struct("Manifests")
            .field("reindex", &self.reindex)
            .field("namespace", &self.namespace)
            .field("objects", &objects)
            .finish()
    }
}

/// What `run -f` was given.
#[derive(Debug)]
pub enum Loaded {
    /// One `RemoteReindex` (boxed: a spec is a few kilobytes).
    Reindex(Box<Manifests<RemoteReindex>>),
    /// One `Migration` (boxed, as `Reindex`).
    Migration(Box<Manifests<Migration>>),
}

/// The resource kinds the files may hold.
pub trait ManifestKind:
    serde::de::DeserializeOwned + kube::Resource + kube::CustomResourceExt
{
    /// The `kind`.
    const KIND: &'static str;
}

impl ManifestKind for RemoteReindex {
    const KIND: &'static str = "RemoteReindex";
}

impl ManifestKind for Migration {
    const KIND: &'static str = "Migration";
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Secret,
    ConfigMap,
}

impl Manifests<RemoteReindex> {
    /// Loads and checks the given files (`-` is standard input): one `RemoteReindex`.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Manifests, ManifestError> {
        let (docs, objects) = read(paths)?;
        Manifests::from_docs(docs, objects)
    }

    /// Loads one `RemoteReindex` or one `Migration`, whichever the files hold.
    pub fn load_any(paths: &[impl AsRef<Path>]) -> Result<Loaded, ManifestError> {
        let (docs, objects) = read(paths)?;
        if docs.iter().any(|(_, d)| d["kind"] == Migration::KIND) {
            Manifests::<Migration>::from_docs(docs, objects).map(|m| Loaded::Migration(Box::new(m)))
        } else {
            Manifests::from_docs(docs, objects).map(|m| Loaded::Reindex(Box::new(m)))
        }
    }
}

type Objects = BTreeMap<(Kind, String, String), BTreeMap<String, Vec<u8>>>;

/// The resources (`reindex.dev/v1alpha1` documents) and the Secrets/ConfigMaps of the files.
fn read(paths: &[impl AsRef<Path>]) -> Result<(Vec<(String, Value)>, Objects), ManifestError> {
    let mut reindexes = Vec::new();
    let mut objects = BTreeMap::new();
    for path in paths {
        let path = path.as_ref();
        let text = if path == Path::new("-") {
            std::io::read_to_string(std::io::stdin())
                .map_err(|e| ManifestError(format!("reading standard input: {e}")))?
        } else {
            std::fs::read_to_string(path)
                .map_err(|e| ManifestError(format!("{}: {e}", path.display())))?
        };
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .map_err(|e| ManifestError(format!("{}: invalid YAML: {e}", path.display())))?;
        for (i, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let at = format!("{} (document {})", path.display(), i + 1);
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let api = doc["apiVersion"].as_str().unwrap_or_default().to_string();
            match (api.as_str(), kind.as_str()) {
                ("reindex.dev/v1alpha1", "RemoteReindex" | "Migration") => {
                    reindexes.push((at, doc))
                }
                ("v1", "Secret") => {
                    let (ns, name, data) = secret_data(&doc, &at)?;
                    objects.insert((Kind::Secret, ns, name), data);
                }
                ("v1", "ConfigMap") => {
                    let (ns, name, data) = config_map_data(&doc, &at)?;
                    objects.insert((Kind::ConfigMap, ns, name), data);
                }
                _ => {
                    return Err(ManifestError(format!(
                        "{at}: unsupported object `{api}/{kind}`; expected one reindex.dev/v1alpha1 RemoteReindex or Migration and v1 Secrets/ConfigMaps"
                    )));
                }
            }
        }
    }
    Ok((reindexes, objects))
}

impl<R: ManifestKind> Manifests<R> {
    fn from_docs(docs: Vec<(String, Value)>, objects: Objects) -> Result<Self, ManifestError> {
        let kind = R::KIND;
        if let Some((at, d)) = docs.iter().find(|(_, d)| d["kind"] != kind) {
            return Err(ManifestError(format!(
                "{at}: a {} beside a {kind}; run one at a time",
                d["kind"].as_str().unwrap_or_default()
            )));
        }
        let mut reindexes = docs;
        let (at, doc) = match reindexes.len() {
            1 => reindexes.pop().expect("one element"),
            0 => {
                return Err(ManifestError(format!(
                    "no {kind} (apiVersion reindex.dev/v1alpha1) in the given files"
                )));
            }
            n => {
                return Err(ManifestError(format!(
                    "{n} {kind} objects given; run one at a time"
                )));
            }
        };
        let mut unknown = Vec::new();
        let mut note = |p: serde_ignored::Path<'_>| {
            let p = p.to_string();
            if !matches!(p.as_str(), "apiVersion" | "kind" | "status")
                && !p.starts_with("metadata.")
                && !p.starts_with("status.")
            {
                unknown.push(p);
            }
        };
        let parsed: Result<R, _> =
            serde_path_to_error::deserialize(serde_ignored::Deserializer::new(doc, &mut note));
        // An unknown key first: a misspelt required field (`indx`) is why `index` is missing.
        let mut problems: Vec<String> = if unknown.is_empty() {
            Vec::new()
        } else {
            let schema = schema_of::<R>();
            unknown.iter().map(|p| unknown_field(p, &schema)).collect()
        };
        let resource = match parsed {
            Ok(r) if problems.is_empty() => r,
            Ok(_) => return Err(ManifestError(format!("{at}: {}", problems.join("; ")))),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                problems.push(if path.is_empty() || path == "." {
                    inner.to_string()
                } else {
                    format!("{path}: {inner}")
                });
                return Err(ManifestError(format!("{at}: {}", problems.join("; "))));
            }
        };
        let namespace = resource
            .meta()
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        Ok(Manifests {
            reindex: resource,
            namespace,
            objects,
        })
    }

    /// A [`SecretSource`] over the given Secrets/ConfigMaps, limited to the resource's namespace.
    pub fn secrets(&self) -> LocalSecrets<'_> {
        LocalSecrets {
            namespace: &self.namespace,
            objects: &self.objects,
        }
    }
}

/// The CRD's `openAPIV3Schema` of `R` (its first version).
fn schema_of<R: kube::CustomResourceExt>() -> Value {
    let crd = serde_json::to_value(R::crd()).unwrap_or_default();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// `unknown field `spec.source.indx` (did you mean `index`?)`: the closest field the schema
/// knows at that place, when one is close enough to be a typo.
fn unknown_field(path: &str, schema: &Value) -> String {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let mut at = Some(schema);
    for seg in parent.split('.').filter(|s| !s.is_empty()) {
        at = at.and_then(|s| child(s, seg));
    }
    let known = at.map(properties).unwrap_or_default();
    match closest(key, &known) {
        Some(k) => format!("unknown field `{path}` (did you mean `{k}`?)"),
        None => format!("unknown field `{path}`"),
    }
}

/// The schemas a (sub)schema is made of: itself and its `allOf`/`anyOf`/`oneOf` branches.
fn branches(s: &Value) -> impl Iterator<Item = &Value> {
    std::iter::once(s).chain(
        ["allOf", "anyOf", "oneOf"]
            .into_iter()
            .filter_map(|k| s[k].as_array())
            .flatten(),
    )
}

/// The schema of `seg` below `s`: a property, an array's items (`seg` is an index) or a map's
/// values.
fn child<'a>(s: &'a Value, seg: &str) -> Option<&'a Value> {
    branches(s).find_map(|b| {
        b["properties"].get(seg).or_else(|| {
            if seg.parse::<usize>().is_ok() && b["items"].is_object() {
                Some(&b["items"])
            } else {
                b.get("additionalProperties").filter(|v| v.is_object())
            }
        })
    })
}

fn properties(s: &Value) -> Vec<String> {
    branches(s)
        .filter_map(|b| b["properties"].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect()
}

/// The known name `key` most likely misspells: equal up to case, `_` and `-`, or within a small
/// edit distance for its length.
fn closest(key: &str, known: &[String]) -> Option<String> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let k = norm(key);
    let allowed = match k.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        6..=9 => 2,
        _ => 3,
    };
    known
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&k, &norm(c)), c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.clone())
}

fn meta(doc: &Value, at: &str) -> Result<(String, String), ManifestError> {
    let name = doc["metadata"]["name"]
        .as_str()
        .ok_or_else(|| ManifestError(format!("{at}: metadata.name is missing")))?;
    let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default");
    Ok((ns.to_string(), name.to_string()))
}

type Named = (String, String, BTreeMap<String, Vec<u8>>);

fn secret_data(doc: &Value, at: &str) -> Result<Named, ManifestError> {
    let (ns, name) = meta(doc, at)?;
    let mut data = BTreeMap::new();
    if let Some(d) = doc["data"].as_object() {
        for (k, v) in d {
            let s = v.as_str().ok_or_else(|| {
                ManifestError(format!("{at}: Secret `{name}` data.{k} is not a string"))
            })?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.split_whitespace().collect::<String>())
                .map_err(|_| ManifestError(format!("{at}: Secret `{name}` data.{k} is not valid base64 (use stringData for plain text)")))?;
            data.insert(k.clone(), bytes);
        }
    }
    if let Some(d) = doc["stringData"].as_object() {
        for (k, v) in d {
            let s = v.as_str().ok_or_else(|| {
                ManifestError(format!(
                    "{at}: Secret `{name}` stringData.{k} is not a string"
                ))
            })?;
            data.insert(k.clone(), s.as_bytes().to_vec());
        }
    }
    Ok((ns, name, data))
}

fn config_map_data(doc: &Value, at: &str) -> Result<Named, ManifestError> {
    let (ns, name) = meta(doc, at)?;
    let mut data = BTreeMap::new();
    if let Some(d) = doc["data"].as_object() {
        for (k, v) in d {
            let s = v.as_str().ok_or_else(|| {
                ManifestError(format!("{at}: ConfigMap `{name}` data.{k} is not a string"))
            })?;
            data.insert(k.clone(), s.as_bytes().to_vec());
        }
    }
    Ok((ns, name, data))
}

/// Secrets and ConfigMaps from the files, visible only in the resource's namespace.
pub struct LocalSecrets<'a> {
    namespace: &'a str,
    objects: &'a Objects,
}

impl SecretSource for LocalSecrets<'_> {
    async fn get(
        &self,
        kind: ConfigKind,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, SecretError> {
        let k = match kind {
            ConfigKind::Secret => Kind::Secret,
            ConfigKind::ConfigMap => Kind::ConfigMap,
        };
        Ok(self
            .objects
            .get(&(k, self.namespace.to_string(), name.to_string()))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_output_shows_no_secret_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(
            &path,
            "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {name: r}\nspec:\n  source: {remote: {host: 'https://a.example.com', basicAuth: {secretRef: {name: c}}}, index: a}\n  dest: {index: b}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\ndata: {username: ZWxhc3RpYw==}\nstringData: {password: hunter2-very-secret}\n",
        )
        .unwrap();
        let m = super::Manifests::load(&[&path]).unwrap();
        let shown = format!("{m:?}");
        assert!(
            shown.contains("Secret default/c keys [password, username]"),
            "{shown}"
        );
        for secret in ["hunter2-very-secret", "elastic", "ZWxhc3Rp", "104, 117"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    fn load_err(spec: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(
            &path,
            format!("apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: r}}\nspec:\n{spec}"),
        )
        .unwrap();
        super::Manifests::load(&[&path]).unwrap_err().0
    }

    const SPEC: &str = "  source:\n    remote: {host: 'http://127.0.0.1:9200'}\n    index: a\n  dest:\n    index: b\n";

    #[test]
    fn a_misspelt_required_field_is_named_with_the_closest_known_one() {
        let e = load_err(&SPEC.replace("index: a", "indx: a"));
        assert!(
            e.contains("unknown field `spec.source.indx` (did you mean `index`?)"),
            "{e}"
        );
        assert!(!e.starts_with("missing field"), "{e}");
    }

    #[test]
    fn a_misspelt_optional_field_is_named_with_the_closest_known_one() {
        let e = load_err(&format!(
            "{}  preflight_timeout: 1s\n",
            SPEC.replace("index: a", "index: a\n    maxdocs: 5")
        ));
        assert!(
            e.contains("unknown field `spec.source.maxdocs` (did you mean `maxDocs`?)"),
            "{e}"
        );
        assert!(
            e.contains("unknown field `spec.preflight_timeout` (did you mean `preflightTimeout`?)"),
            "{e}"
        );
        let e = load_err(&format!("{SPEC}  colour: blue\n"));
        assert!(
            e.contains("unknown field `spec.colour`") && !e.contains("did you mean"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_value_is_named_by_its_path() {
        let e = load_err(&SPEC.replace("index: a", "index: a\n    size: lots"));
        assert!(
            e.contains("spec.source.size: invalid type: string \"lots\""),
            "{e}"
        );
        let e = load_err(&SPEC.replace("index: b", "index: b\n    opType: upsert"));
        assert!(
            e.contains("spec.dest.opType: unknown variant `upsert`"),
            "{e}"
        );
    }
}
