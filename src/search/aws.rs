//! AWS Signature Version 4 for Amazon OpenSearch Service (`es`) and OpenSearch Serverless
//! (`aoss`), and a small credentials chain: a Secret, or what the pod has — environment
//! variables, a web identity token exchanged at STS (IRSA), the container credentials endpoint
//! (EKS Pod Identity, ECS). Temporary credentials are cached and refreshed five minutes before
//! they expire. Signing uses the `aws-sigv4` crate; nothing here logs a credential.

use super::secret::SecretString;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use std::time::{Duration, SystemTime};
use tokio::sync::Mutex;

/// Temporary credentials are refreshed this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// One set of AWS credentials.
#[derive(Clone)]
pub struct AwsCredentials {
    /// `AKIA…` / `ASIA…`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretString>,
    /// When temporary credentials expire.
    pub expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &"***")
            .field("session_token", &self.session_token.is_some())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    fn fresh(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|e| now + REFRESH_BEFORE < e)
    }
    fn valid(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// Where credentials come from.
#[derive(Clone, Debug)]
pub enum AwsCredentialSource {
    /// Fixed credentials (from a Secret).
    Static(AwsCredentials),
    /// The standard chain, looked up on first use and again before temporary credentials
    /// expire: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`[/`AWS_SESSION_TOKEN`], then
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (STS `AssumeRoleWithWebIdentity`, endpoint
    /// overridable with `AWS_ENDPOINT_URL_STS`), then `AWS_CONTAINER_CREDENTIALS_FULL_URI` /
    /// `_RELATIVE_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`.
    DefaultChain,
}

/// Signs requests for one endpoint.
pub struct AwsSigner {
    region: String,
    service: &'static str,
    source: AwsCredentialSource,
    cache: Mutex<Option<AwsCredentials>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for AwsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSigner")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl AwsSigner {
    /// A signer for `service` (`es` or `aoss`) in `region`.
    pub fn new(
        region: impl Into<String>,
        service: &'static str,
        source: AwsCredentialSource,
    ) -> Self {
        super::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            // Credentials endpoints are never followed elsewhere (the web identity token, the
            // container authorization token).
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a default HTTP client builds");
        AwsSigner {
            region: region.into(),
            service,
            source,
            cache: Mutex::new(None),
            http,
        }
    }

    /// Whether `other` signs the same way: same region and service, and the same fixed keys
    /// (or both the provider chain, which refreshes itself).
    pub fn same_as(&self, other: &AwsSigner) -> bool {
        self.region == other.region
            && self.service == other.service
            && match (&self.source, &other.source) {
                (AwsCredentialSource::DefaultChain, AwsCredentialSource::DefaultChain) => true,
                (AwsCredentialSource::Static(a), AwsCredentialSource::Static(b)) => {
                    a.access_key_id == b.access_key_id
                        && a.secret_access_key == b.secret_access_key
                        && a.session_token == b.session_token
                }
                _ => false,
            }
    }

    /// The signing name: `es` or `aoss`.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Secret values that must never appear in messages (the static ones; fetched temporary
    /// credentials are not kept outside the cache).
    pub(crate) fn secrets(&self) -> Vec<&str> {
        match &self.source {
            AwsCredentialSource::Static(c) => {
                let mut v = vec![c.secret_access_key.expose()];
                if let Some(t) = &c.session_token {
                    v.push(t.expose());
                }
                v
            }
            AwsCredentialSource::DefaultChain => vec![],
        }
    }

    /// Current credentials: cached until five minutes before they expire.
    pub async fn credentials(&self) -> Result<AwsCredentials, String> {
        if let AwsCredentialSource::Static(c) = &self.source {
            return Ok(c.clone());
        }
        let mut cache = self.cache.lock().await;
        let now = SystemTime::now();
        if let Some(c) = cache.as_ref()
            && c.fresh(now)
        {
            return Ok(c.clone());
        }
        match default_chain(&self.http, &self.region).await {
            Ok(c) => {
                // The key id identifies an IAM user or session: not logged, like the secret itself.
                tracing::debug!(expires_at = ?c.expires_at.and_then(|t| k8s_openapi::jiff::Timestamp::try_from(t).ok()), "fetched AWS credentials");
                *cache = Some(c.clone());
                Ok(c)
            }
            Err(e) => match cache.as_ref() {
                Some(c) if c.valid(now) => {
                    tracing::warn!(error = %e, "could not refresh AWS credentials; using the current ones until they expire");
                    Ok(c.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// The headers to add to a request: `authorization`, `x-amz-date`, and
    /// `x-amz-security-token` / `x-amz-content-sha256` where they apply. `headers` are the
    /// request's own headers to sign (e.g. `content-type`); `host` is taken from `url`.
    pub fn sign(
        &self,
        creds: &AwsCredentials,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, String> {
        let identity = aws_credential_types::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.expose().to_string(),
            creds.session_token.as_ref().map(|t| t.expose().to_string()),
            creds.expires_at,
            "remote-reindex",
        )
        .into();
        let mut settings = SigningSettings::default();
        if self.service == "aoss" {
            // Serverless requires the payload hash as a header.
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let req = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _) = sign(req, &params)
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into_parts();
        let (hs, _) = instructions.into_parts();
        Ok(hs
            .into_iter()
            .map(|h| (h.name(), h.value().to_string()))
            .collect())
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The standard chain, first provider that is configured wins.
async fn default_chain(http: &reqwest::Client, region: &str) -> Result<AwsCredentials, String> {
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(AwsCredentials {
            access_key_id: id,
            secret_access_key: SecretString::new(secret),
            session_token: env("AWS_SESSION_TOKEN").map(SecretString::new),
            expires_at: None,
        });
    }
    if let (Some(file), Some(role)) = (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN")) {
        return web_identity(http, region, &file, &role)
            .await
            .map_err(|e| format!("web identity (AWS_WEB_IDENTITY_TOKEN_FILE, {role}): {e}"));
    }
    if env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
    {
        return container(http)
            .await
            .map_err(|e| format!("container credentials endpoint: {e}"));
    }
    Err("no AWS credentials: set aws.credentialsSecretRef, or give the pod AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a web identity (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) or EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI)".into())
}

/// The STS endpoint: `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, else the regional endpoint of
/// `AWS_REGION` / `AWS_DEFAULT_REGION` / the endpoint's region.
fn sts_endpoint(region: &str) -> String {
    if let Some(u) = env("AWS_ENDPOINT_URL_STS").or_else(|| env("AWS_ENDPOINT_URL")) {
        return u;
    }
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| region.to_string());
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{suffix}")
}

async fn web_identity(
    http: &reqwest::Client,
    region: &str,
    token_file: &str,
    role_arn: &str,
) -> Result<AwsCredentials, String> {
    let token = tokio::fs::read_to_string(token_file)
        .await
        .map_err(|e| format!("cannot read the token file {token_file}: {e}"))?;
    let session = env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| {
        format!(
            "remote-reindex-{}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
        )
    });
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRoleWithWebIdentity")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", role_arn)
        .append_pair("RoleSessionName", &session)
        .append_pair("WebIdentityToken", token.trim())
        .finish();
    let endpoint = sts_endpoint(region);
    let resp = http
        .post(&endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/xml")
        .body(form)
        .send()
        .await
        .map_err(|e| format!("{endpoint} is unreachable: {}", without_url(&e)))?;
    let status = resp.status();
    if status.is_redirection() {
        return Err(redirected(&endpoint, status, resp.headers()));
    }
    let body = resp
        .text()
        .await
        .map_err(|e| format!("reading the STS answer: {}", without_url(&e)))?;
    if !status.is_success() {
        let code = xml_text(&body, "Code").unwrap_or_default();
        let message = xml_text(&body, "Message").unwrap_or_default();
        return Err(format!(
            "STS answered HTTP {} {code}: {message}",
            status.as_u16()
        ));
    }
    let field =
        |tag: &str| xml_text(&body, tag).ok_or_else(|| format!("the STS answer has no <{tag}>"));
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: SecretString::new(field("SecretAccessKey")?),
        session_token: Some(SecretString::new(field("SessionToken")?)),
        expires_at: Some(parse_time(&field("Expiration")?)?),
    })
}

async fn container(http: &reqwest::Client) -> Result<AwsCredentials, String> {
    let uri = match env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        Some(rel) => format!("http://169.254.170.2{rel}"),
        None => env("AWS_CONTAINER_CREDENTIALS_FULL_URI").unwrap_or_default(),
    };
    let url = url::Url::parse(&uri).map_err(|e| format!("`{uri}` is not a URL: {e}"))?;
    if url.scheme() == "http" && !allowed_container_host(&url) {
        return Err(format!(
            "refusing to send the container authorization token over plain http to {}: only loopback and the EKS/ECS link-local addresses are allowed",
            url.host_str().unwrap_or("")
        ));
    }
    let token = match env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(f) => Some(
            tokio::fs::read_to_string(&f)
                .await
                .map_err(|e| {
                    format!("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {f}: {e}")
                })?
                .trim()
                .to_string(),
        ),
        None => env("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    let mut req = http.get(url.clone());
    if let Some(t) = token {
        req = req.header("authorization", t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{} is unreachable: {}", host_of(&url), without_url(&e)))?;
    let status = resp.status();
    if status.is_redirection() {
        return Err(redirected(url.as_str(), status, resp.headers()));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the answer: {}", without_url(&e)))?;
    if !status.is_success() {
        let (_, reason) = super::error::parse_error_body(&body);
        return Err(format!(
            "{} answered HTTP {}: {reason}",
            host_of(&url),
            status.as_u16()
        ));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        access_key_id: String,
        secret_access_key: String,
        token: Option<String>,
        expiration: Option<String>,
    }
    let a: Answer = serde_json::from_slice(&body)
        .map_err(|e| format!("unexpected answer from {}: {e}", host_of(&url)))?;
    Ok(AwsCredentials {
        access_key_id: a.access_key_id,
        secret_access_key: SecretString::new(a.secret_access_key),
        session_token: a.token.filter(|t| !t.is_empty()).map(SecretString::new),
        expires_at: a.expiration.as_deref().map(parse_time).transpose()?,
    })
}

/// The error for a 3xx answer from a credentials endpoint: redirects are never followed.
fn redirected(
    endpoint: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> String {
    let shown = url::Url::parse(endpoint)
        .map(|u| host_of(&u))
        .unwrap_or_else(|_| endpoint.to_string());
    let location = url::Url::parse(endpoint)
        .map(|u| super::error::location(&u, headers))
        .unwrap_or_else(|_| "(none)".into());
    format!(
        "{shown} answered HTTP {} with Location: {location}; redirects are not followed",
        status.as_u16()
    )
}

fn host_of(url: &url::Url) -> String {
    format!("{}://{}", url.scheme(), crate::net::host_port(url))
}

/// Plain http is allowed only to loopback and the ECS/EKS agents' link-local addresses, as in
/// the AWS SDKs.
fn allowed_container_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || ip == std::net::Ipv4Addr::new(169, 254, 170, 2)
                || ip == std::net::Ipv4Addr::new(169, 254, 170, 23)
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip == "fd00:ec2::23".parse::<std::net::Ipv6Addr>().unwrap()
        }
        None => false,
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut parts = vec![];
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.last().cloned().unwrap_or_default()
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    s.trim()
        .parse::<k8s_openapi::jiff::Timestamp>()
        .map(SystemTime::from)
        .map_err(|e| format!("bad expiration time `{s}`: {e}"))
}

/// The text of the first `<tag>…</tag>`, with XML entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(
        xml[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sts_answers() {
        let xml = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s&amp;k</SecretAccessKey><SessionToken>tok</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        assert_eq!(xml_text(xml, "SecretAccessKey").as_deref(), Some("s&k"));
        assert!(parse_time(&xml_text(xml, "Expiration").unwrap()).is_ok());
        assert!(xml_text(xml, "Nope").is_none());
    }

    #[test]
    fn debug_output_shows_no_credential() {
        let c = AwsCredentials {
            access_key_id: "AKIAEXAMPLEKEYID1234".into(),
            secret_access_key: SecretString::new("wJalrXUtnFEMI/K7MDENG"),
            session_token: Some(SecretString::new("session-token-value")),
            expires_at: None,
        };
        let shown = format!("{c:?} {:?}", AwsCredentialSource::Static(c.clone()));
        for secret in [
            "AKIAEXAMPLEKEYID1234",
            "wJalrXUtnFEMI",
            "session-token-value",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn refreshes_five_minutes_before_expiry() {
        let now = SystemTime::now();
        let c = |secs| AwsCredentials {
            access_key_id: "A".into(),
            secret_access_key: SecretString::new("s"),
            session_token: None,
            expires_at: Some(now + Duration::from_secs(secs)),
        };
        assert!(c(600).fresh(now));
        assert!(!c(200).fresh(now) && c(200).valid(now));
    }

    #[test]
    fn signs_with_the_documented_example_key() {
        // AWS's documented example credentials; checks the wiring (headers present, scope).
        let s = AwsSigner::new("us-east-1", "aoss", AwsCredentialSource::DefaultChain);
        let creds = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(SecretString::new("tok")),
            expires_at: None,
        };
        let h = s
            .sign(
                &creds,
                "POST",
                "https://x.us-east-1.aoss.amazonaws.com/i/_doc/a%2Fb",
                &[("content-type", "application/json")],
                b"{}",
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )
            .unwrap();
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let auth = get("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/aoss/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="), "{auth}");
        assert_eq!(get("x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(
            get("x-amz-content-sha256"),
            Some("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        );
        assert_eq!(get("x-amz-security-token"), Some("tok"));
    }
}
