//! Where the server's credentials come from: the configuration's tenants,
//! or, when it names none, a demo tenant whose random tokens are created on
//! the first start.
//!
//! The demo tokens are printed once and written to
//! `<data>/demo-tokens.txt`; the server itself keeps only their sha256
//! digests, in `<data>/credentials.toml`. Both files are created readable
//! by their owner only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use domain::ids::TenantId;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::auth::{token_digest, Authenticator, Role};
use crate::config::{ConfigError, CredentialConfig, ServerConfig, TenantConfig};

/// The demo tenant's id.
pub const DEMO_TENANT: &str = "demo";

/// The file of credential digests in the data directory.
pub const CREDENTIALS_FILE: &str = "credentials.toml";

/// The file of demo tokens in the data directory (plain, owner-only).
pub const DEMO_TOKENS_FILE: &str = "demo-tokens.txt";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCredentials {
    tenants: BTreeMap<String, Vec<StoredCredential>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCredential {
    name: String,
    role: String,
    token_sha256: String,
}

/// What [`load`] did, for the start-up banner.
pub enum CredentialSource {
    /// The configuration file's tenants.
    Configuration,
    /// The demo tenant created earlier, from `<data>/credentials.toml`.
    StoredDemo(PathBuf),
    /// The demo tenant created now: its tokens by role, to print once.
    NewDemo {
        /// The file the tokens were also written to.
        file: PathBuf,
        /// `(role, token)` pairs.
        tokens: Vec<(Role, String)>,
    },
}

/// The credentials the configuration names (`tenants.*.credentials`),
/// checked as [`load`] takes them: `None` when it names no tenant (the
/// directory's stored or new demo credentials apply). Reads and writes
/// nothing, so a start can be refused for them before anything is made.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the first bad credential (a role, a
/// digest, a token given twice).
pub fn configured(config: &ServerConfig) -> Result<Option<Authenticator>, ConfigError> {
    if config.tenants.is_empty() {
        return Ok(None);
    }
    let mut auth = Authenticator::default();
    let mut seen = Digests::new();
    for (tenant, tenant_config) in &config.tenants {
        for (i, credential) in tenant_config.credentials.iter().enumerate() {
            let key = format!("tenants.{tenant}.credentials[{i}]");
            add(
                &mut auth,
                &mut seen,
                tenant,
                &credential.name,
                &credential.role,
                &credential.token_sha256,
                &key,
            )?;
        }
    }
    Ok(Some(auth))
}

/// Builds the authenticator: from the configuration's tenants, else from
/// the stored demo credentials, else by creating the demo tenant.
///
/// # Errors
/// A credentials file that cannot be read, parsed or written.
pub fn load(
    config: &ServerConfig,
    data_dir: &Path,
) -> Result<(Authenticator, CredentialSource), ConfigError> {
    if let Some(auth) = configured(config)? {
        return Ok((auth, CredentialSource::Configuration));
    }
    let mut auth = Authenticator::default();
    let mut seen = Digests::new();
    let stored_path = data_dir.join(CREDENTIALS_FILE);
    if stored_path.exists() {
        // What the file is and how to start over, beside what is wrong with
        // it: a damaged file told only "invalid basic string".
        let remedy = "the demo credentials the directory's first start wrote; if the file was \
                      damaged, stop the server and remove it: the next start prints new demo \
                      tokens";
        let text = std::fs::read_to_string(&stored_path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::InvalidData {
                ConfigError::Parse {
                    path: stored_path.clone(),
                    message: format!("{source} ({remedy})"),
                }
            } else {
                ConfigError::Read {
                    path: stored_path.clone(),
                    source,
                }
            }
        })?;
        let stored: StoredCredentials =
            toml::from_str(&text).map_err(|e| {
                match ConfigError::parse(&stored_path, &text, &e) {
                    ConfigError::Parse { path, message } => ConfigError::Parse {
                        path,
                        message: format!("{message} ({remedy})"),
                    },
                    other => other,
                }
            })?;
        if stored.tenants.values().all(Vec::is_empty) {
            return Err(ConfigError::Invalid {
                key: format!("{}: tenants", stored_path.display()),
                problem: "holds no credential, so no one could sign in: stop the server and \
                          remove the file, and the next start prints new demo tokens"
                    .to_owned(),
            });
        }
        // The same rules as the configuration file's tenants.
        let as_configured: BTreeMap<String, TenantConfig> = stored
            .tenants
            .iter()
            .map(|(tenant, credentials)| {
                let credentials = credentials
                    .iter()
                    .map(|c| CredentialConfig {
                        name: c.name.clone(),
                        role: c.role.clone(),
                        token_sha256: c.token_sha256.clone(),
                    })
                    .collect();
                (tenant.clone(), TenantConfig { credentials })
            })
            .collect();
        crate::config::validate_tenants(&as_configured, &format!("{}: ", stored_path.display()))?;
        for (tenant, credentials) in &stored.tenants {
            for (i, credential) in credentials.iter().enumerate() {
                let key = format!("{}: tenants.{tenant}[{i}]", stored_path.display());
                add(
                    &mut auth,
                    &mut seen,
                    tenant,
                    &credential.name,
                    &credential.role,
                    &credential.token_sha256,
                    &key,
                )?;
            }
        }
        return Ok((auth, CredentialSource::StoredDemo(stored_path)));
    }
    let tokens: Vec<(Role, String)> = Role::TENANT
        .into_iter()
        .map(|role| (role, format!("oms_{}_{}", role.as_str(), random_hex(24))))
        .collect();
    let stored = StoredCredentials {
        tenants: BTreeMap::from([(
            DEMO_TENANT.to_owned(),
            tokens
                .iter()
                .map(|(role, token)| StoredCredential {
                    name: format!("demo-{role}"),
                    role: role.as_str().to_owned(),
                    token_sha256: hex::encode(token_digest(token)),
                })
                .collect(),
        )]),
    };
    let digests = toml::to_string(&stored).map_err(|e| ConfigError::Parse {
        path: stored_path.clone(),
        message: e.to_string(),
    })?;
    let mut plain =
        String::from("# Demo tenant `demo`: bearer tokens by role. Keep this file private.\n");
    for (role, token) in &tokens {
        plain.push_str(&format!("{role}={token}\n"));
    }
    // The digests file is the commit point: a start killed before its
    // rename left no tenant, so the next start creates one again and its
    // tokens replace any the killed start wrote.
    let tokens_path = data_dir.join(DEMO_TOKENS_FILE);
    write_private(&tokens_path, plain.as_bytes())?;
    write_private(&stored_path, digests.as_bytes())?;
    for (role, token) in &tokens {
        auth.add(
            token_digest(token),
            TenantId::new(DEMO_TENANT),
            *role,
            format!("demo-{role}"),
        );
    }
    Ok((
        auth,
        CredentialSource::NewDemo {
            file: tokens_path,
            tokens,
        },
    ))
}

/// The token digests added so far, each with the key that added it.
type Digests = std::collections::HashMap<[u8; 32], String>;

/// Adds one credential. A token names one credential: a digest given
/// twice (in one tenant or two) is refused, as is the digest of the empty
/// token, which no request can present.
fn add(
    auth: &mut Authenticator,
    seen: &mut Digests,
    tenant: &str,
    name: &str,
    role: &str,
    token_sha256: &str,
    key: &str,
) -> Result<(), ConfigError> {
    let role = role.parse::<Role>().map_err(|e| ConfigError::Invalid {
        key: format!("{key}.role"),
        problem: e.to_string(),
    })?;
    let invalid_digest = |problem: String| ConfigError::Invalid {
        key: format!("{key}.token_sha256"),
        problem,
    };
    let digest = hex::decode(token_sha256)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| invalid_digest("expected 64 hex digits".to_owned()))?;
    if digest == crate::auth::token_digest("") {
        return Err(invalid_digest(
            "this is the digest of the empty token, which no request can present".to_owned(),
        ));
    }
    if let Some(first) = seen.get(&digest) {
        return Err(invalid_digest(format!(
            "the same token as {first}: a token names one credential, so one tenant and one role"
        )));
    }
    seen.insert(digest, key.to_owned());
    auth.add(digest, TenantId::new(tenant), role, name.to_owned());
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// Replaces `path` with a file holding `bytes` that only its owner can
/// read, atomically: written and synced under a temporary name, renamed
/// over `path`, then the directory synced. A crash leaves the old file or
/// the new one, never a part of either.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Write {
        path: path.to_owned(),
        source,
    };
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let temporary = path.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(io)?;
    #[cfg(unix)]
    {
        // A temporary file left by a killed start keeps its old mode.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_tenant_is_created_once_private_and_reloaded_from_digests() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::default();
        let (auth, source) = load(&config, dir.path()).unwrap();
        let CredentialSource::NewDemo { file, tokens } = source else {
            panic!("expected a new demo tenant");
        };
        assert_eq!(auth.len(), 4);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "tokens file must be owner-only");
        }
        let stored = std::fs::read_to_string(dir.path().join(CREDENTIALS_FILE)).unwrap();
        assert!(!stored.contains(&tokens[0].1), "digests only");

        let (again, source) = load(&config, dir.path()).unwrap();
        assert!(matches!(source, CredentialSource::StoredDemo(_)));
        let principal = again.authenticate(&tokens[3].1).unwrap();
        assert_eq!(principal.role, Role::Admin);
        assert_eq!(principal.tenant.as_str(), DEMO_TENANT);
    }

    #[test]
    fn a_first_start_killed_before_its_digests_were_stored_starts_again_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        // What a SIGKILL between the two files leaves: the tokens of a demo
        // tenant that was never stored, and a half-written digests file
        // under its temporary name.
        std::fs::write(
            dir.path().join(DEMO_TOKENS_FILE),
            "viewer=oms_viewer_stale\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(format!("{CREDENTIALS_FILE}.tmp")),
            "[tenants]\nde",
        )
        .unwrap();
        let (auth, source) = load(&ServerConfig::default(), dir.path()).unwrap();
        let CredentialSource::NewDemo { file, tokens } = source else {
            panic!("expected a new demo tenant");
        };
        let written = std::fs::read_to_string(&file).unwrap();
        assert!(!written.contains("stale"), "{written}");
        for (role, token) in &tokens {
            assert!(written.contains(&format!("{role}={token}")), "{written}");
            assert_eq!(auth.authenticate(token).unwrap().role, *role);
        }
        let (again, source) = load(&ServerConfig::default(), dir.path()).unwrap();
        assert!(matches!(source, CredentialSource::StoredDemo(_)));
        assert!(again.authenticate(&tokens[0].1).is_some());
    }

    fn config_with(credentials: &[(&str, &str, &str)]) -> ServerConfig {
        let mut config = ServerConfig::default();
        for (tenant, role, token) in credentials {
            config
                .tenants
                .entry((*tenant).to_owned())
                .or_insert_with(|| crate::config::TenantConfig {
                    credentials: Vec::new(),
                })
                .credentials
                .push(crate::config::CredentialConfig {
                    name: format!("{tenant}-{role}"),
                    role: (*role).to_owned(),
                    token_sha256: hex::encode(crate::auth::token_digest(token)),
                });
        }
        config
    }

    #[test]
    fn a_token_given_to_two_credentials_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        for credentials in [
            [("t1", "admin", "same"), ("t2", "viewer", "same")],
            [("t1", "admin", "same"), ("t1", "sales", "same")],
        ] {
            let Err(error) = load(&config_with(&credentials), dir.path()) else {
                panic!("a token named two credentials: {credentials:?}");
            };
            let text = error.to_string();
            assert!(text.contains("token_sha256"), "{text}");
            assert!(text.contains("tenants.t1.credentials[0]"), "{text}");
        }
        let config = config_with(&[("t1", "admin", "one"), ("t2", "admin", "two")]);
        let (auth, _) = load(&config, dir.path()).unwrap();
        assert_eq!(auth.authenticate("two").unwrap().tenant.as_str(), "t2");
    }

    #[test]
    fn the_digest_of_the_empty_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let Err(error) = load(&config_with(&[("t1", "admin", "")]), dir.path()) else {
            panic!("the empty token's digest was accepted");
        };
        assert!(error.to_string().contains("empty token"), "{error}");
    }

    #[test]
    fn a_stored_file_of_no_credential_or_a_tenant_the_grammar_refuses_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let digest = hex::encode(token_digest("t"));
        for (text, words) in [
            ("[tenants]\n".to_owned(), "holds no credential"),
            ("[tenants]\ndemo = []\n".to_owned(), "holds no credential"),
            (
                format!(
                    "[tenants]\n\"a:b\" = [{{ name = \"x\", role = \"admin\", token_sha256 = \"{digest}\" }}]\n"
                ),
                "a tenant id",
            ),
            (
                format!(
                    "[tenants]\n\"{}\" = [{{ name = \"x\", role = \"admin\", token_sha256 = \"{digest}\" }}]\n",
                    "t".repeat(70)
                ),
                "at most 64",
            ),
            (
                format!(
                    "[tenants]\ndemo = [{{ name = \"a\\nb\", role = \"admin\", token_sha256 = \"{digest}\" }}]\n"
                ),
                ".name",
            ),
            (
                format!(
                    "[tenants]\nother = []\ndemo = [{{ name = \"x\", role = \"admin\", token_sha256 = \"{digest}\" }}]\n"
                ),
                "at least one credential",
            ),
            (
                format!(
                    "[tenants]\ndemo = [{{ name = \"x\", role = \"admin\", token_sha256 = \"{digest}\", roles = \"viewer\" }}]\n"
                ),
                "unknown field `roles`",
            ),
            (
                format!(
                    "tenant = \"demo\"\n[tenants]\ndemo = [{{ name = \"x\", role = \"admin\", token_sha256 = \"{digest}\" }}]\n"
                ),
                "unknown field `tenant`",
            ),
        ] {
            std::fs::write(dir.path().join(CREDENTIALS_FILE), &text).unwrap();
            let Err(error) = load(&ServerConfig::default(), dir.path()) else {
                panic!("accepted {text:?}");
            };
            assert!(error.to_string().contains(words), "{text:?}: {error}");
        }
    }
}
