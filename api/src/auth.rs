//! Bearer-token authentication: a token maps to one tenant and one role.
//!
//! Tokens are held only as sha256 digests and compared in constant time
//! against every stored digest, so neither the token nor which credential
//! nearly matched leaks through timing. The tenant of every request comes
//! from here, never from the request.

use std::fmt;
use std::str::FromStr;

use domain::ids::TenantId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a credential may do within its tenant. Sales and operator are
/// separate duties; admin has both; platform has everything admin has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Queries only.
    Viewer,
    /// Queries and quote commands.
    Sales,
    /// Queries, fallout resolution, order cancel and reconciliation.
    Operator,
    /// Everything in its tenant: the catalog, raw events, simulator scripts;
    /// also the operations that touch every tenant when its tenant is the
    /// server's only one ([`Principal::every_tenant`]).
    Admin,
    /// An admin of its tenant who also runs the operations that touch every
    /// tenant of the server (verify the log, rebuild projections, reset a
    /// consumer): the platform's own operators.
    Platform,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Sales,
        Role::Operator,
        Role::Admin,
        Role::Platform,
    ];

    /// The roles of a tenant's own people (every role but
    /// [`Role::Platform`]): the demo tenant has one token for each.
    pub const TENANT: [Role; 4] = [Role::Viewer, Role::Sales, Role::Operator, Role::Admin];

    /// Whether this role may do what `needed` may do.
    pub fn allows(self, needed: Role) -> bool {
        match needed {
            // Sales and operators are separate duties; admin may do both.
            Role::Sales => matches!(self, Role::Sales | Role::Admin | Role::Platform),
            Role::Operator => matches!(self, Role::Operator | Role::Admin | Role::Platform),
            Role::Viewer => true,
            Role::Admin => matches!(self, Role::Admin | Role::Platform),
            Role::Platform => self == Role::Platform,
        }
    }

    /// The role's configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Sales => "sales",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Platform => "platform",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the five.
#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The authenticated caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every read and write of this request is scoped to.
    pub tenant: TenantId,
    /// What the caller may do.
    pub role: Role,
    /// The credential's name (recorded as the operator of fallout actions).
    pub name: String,
    /// Whether the caller may run the operations that touch every tenant
    /// (verify the log, rebuild projections, reset a consumer): a
    /// [`Role::Platform`] credential, or a [`Role::Admin`] of the server's
    /// only tenant, who has every tenant's authority there. Set by
    /// [`Authenticator::authenticate`].
    pub every_tenant: bool,
}

struct Credential {
    digest: [u8; 32],
    principal: Principal,
}

/// The credential store.
#[derive(Default)]
pub struct Authenticator {
    credentials: Vec<Credential>,
    /// The tenants of the credentials (one: its admin acts for every tenant).
    tenants: std::collections::BTreeSet<TenantId>,
    /// The tenants the data directory holds besides (events, or credentials
    /// of an earlier configuration: [`Authenticator::hold_tenants`]).
    held: std::collections::BTreeSet<TenantId>,
}

/// Why no request could present `token` in an `Authorization: Bearer`
/// header, if none could: it is blank, or holds a character other than
/// printable ASCII and inner spaces (a header value carries no line break,
/// no control character, and no other text that clients send alike).
pub fn unpresentable(token: &str) -> Option<&'static str> {
    if token.trim().is_empty() {
        return Some("the token is empty");
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Some("the token is longer than 4096 bytes, more than a header should carry");
    }
    if token.trim() != token {
        return Some("the token has white space at an end, which the header loses");
    }
    if !token.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        return Some(
            "the token holds a character no Authorization header carries (only printable ASCII \
             and inner spaces)",
        );
    }
    None
}

/// Longest token [`unpresentable`] takes, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Shortest token `oms-server hash-token` digests, in characters: a bearer
/// token is a password that anyone who can reach the port may guess.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Why a presentable token is too weak to configure, if it is: shorter
/// than [`MIN_TOKEN_CHARS`].
pub fn too_weak(token: &str) -> Option<String> {
    (token.chars().count() < MIN_TOKEN_CHARS).then(|| {
        format!(
            "the token is shorter than {MIN_TOKEN_CHARS} characters, which anyone could guess \
             (generate one, e.g. `openssl rand -hex 24`)"
        )
    })
}

/// sha256 of a token, as stored in configuration.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Authenticator {
    /// Adds a credential of `tenant` with `role` and `name` by the sha256
    /// of its token.
    pub fn add(&mut self, digest: [u8; 32], tenant: TenantId, role: Role, name: String) {
        self.tenants.insert(tenant.clone());
        self.credentials.push(Credential {
            digest,
            principal: Principal {
                tenant,
                role,
                name,
                every_tenant: false,
            },
        });
    }

    /// Notes the tenants the data directory holds (its log's tenants and
    /// those of every configuration it was served with,
    /// `EventLog::held_tenants`): a tenant there without credentials here
    /// still makes the server one of several tenants.
    pub fn hold_tenants(&mut self, held: impl IntoIterator<Item = TenantId>) {
        self.held.extend(held);
    }

    /// Whether the data directory holds `tenant` (with or without
    /// credentials here).
    pub fn holds(&self, tenant: &str) -> bool {
        self.held.iter().any(|held| held.as_str() == tenant)
    }

    /// The tenants of the credentials.
    pub fn tenants(&self) -> impl Iterator<Item = &TenantId> {
        self.tenants.iter()
    }

    /// The tenants the data directory holds that no credential belongs to.
    pub fn tenants_without_credentials(&self) -> impl Iterator<Item = &TenantId> {
        self.held.difference(&self.tenants)
    }

    /// Whether every credential belongs to one tenant and the data
    /// directory holds no other (then that tenant's operators may read the
    /// server's own figures, and its admins act for every tenant: there is
    /// no other tenant for them to reveal).
    pub fn single_tenant(&self) -> bool {
        self.tenants.union(&self.held).count() <= 1
    }

    /// The principal of `token`, if any credential matches. Every stored
    /// digest is compared, in constant time.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let digest = token_digest(token);
        let mut found = None;
        for credential in &self.credentials {
            if bool::from(credential.digest.ct_eq(&digest)) {
                found = Some(credential.principal.clone());
            }
        }
        found.map(|mut principal| {
            principal.every_tenant = match principal.role {
                Role::Platform => true,
                Role::Admin => self.single_tenant(),
                Role::Viewer | Role::Sales | Role::Operator => false,
            };
            principal
        })
    }

    /// The principal of an `Authorization: Bearer <token>` header value
    /// (the scheme in any case, as RFC 9110 §11.1 has it).
    pub fn authenticate_header(&self, header: Option<&str>) -> Option<Principal> {
        let (scheme, token) = header?.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("Bearer") {
            return None;
        }
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        self.authenticate(token)
    }

    /// How many credentials are configured.
    pub fn len(&self) -> usize {
        self.credentials.len()
    }

    /// Whether no credential is configured.
    pub fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Authenticator {
        let mut auth = Authenticator::default();
        auth.add(
            token_digest("secret-a"),
            TenantId::new("a"),
            Role::Sales,
            "alice".to_owned(),
        );
        auth
    }

    #[test]
    fn a_known_token_yields_its_tenant_and_role() {
        for scheme in ["bearer", "BEARER"] {
            let header = format!("{scheme} secret-a");
            assert!(
                store().authenticate_header(Some(&header)).is_some(),
                "{header}"
            );
        }
        let principal = store().authenticate_header(Some("Bearer secret-a"));
        assert_eq!(
            principal.map(|p| (p.tenant, p.role)),
            Some((TenantId::new("a"), Role::Sales))
        );
    }

    #[test]
    fn unknown_empty_and_malformed_headers_are_refused() {
        let auth = store();
        assert!(auth.authenticate_header(Some("Bearer secret-b")).is_none());
        assert!(auth.authenticate_header(Some("Bearer ")).is_none());
        assert!(auth.authenticate_header(Some("secret-a")).is_none());
        assert!(auth.authenticate_header(Some("Basic secret-a")).is_none());
        assert!(auth.authenticate_header(Some("Bearersecret-a")).is_none());
        assert!(auth.authenticate_header(None).is_none());
    }

    #[test]
    fn sales_and_operator_are_separate_duties_and_admin_has_both() {
        assert!(Role::Sales.allows(Role::Viewer));
        assert!(!Role::Sales.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Sales));
        assert!(Role::Admin.allows(Role::Sales) && Role::Admin.allows(Role::Operator));
        assert!(!Role::Viewer.allows(Role::Sales));
        assert!(Role::Platform.allows(Role::Admin) && !Role::Admin.allows(Role::Platform));
    }

    fn principal(tenant: &str, role: Role, token: &str, auth: &mut Authenticator) {
        auth.add(
            token_digest(token),
            TenantId::new(tenant),
            role,
            token.to_owned(),
        );
    }

    #[test]
    fn only_platform_credentials_or_the_admin_of_the_only_tenant_act_for_every_tenant() {
        let every_tenant =
            |auth: &Authenticator, token: &str| auth.authenticate(token).map(|p| p.every_tenant);
        let mut auth = Authenticator::default();
        principal("a", Role::Admin, "a-admin", &mut auth);
        principal("a", Role::Operator, "a-operator", &mut auth);
        assert_eq!(every_tenant(&auth, "a-admin"), Some(true));
        assert_eq!(every_tenant(&auth, "a-operator"), Some(false));

        principal("b", Role::Admin, "b-admin", &mut auth);
        principal("b", Role::Platform, "b-platform", &mut auth);
        assert_eq!(every_tenant(&auth, "a-admin"), Some(false));
        assert_eq!(every_tenant(&auth, "b-admin"), Some(false));
        assert_eq!(every_tenant(&auth, "b-platform"), Some(true));
    }

    #[test]
    fn only_a_token_a_header_can_carry_is_presentable() {
        assert_eq!(unpresentable("oms_admin_0f3a"), None);
        assert_eq!(unpresentable("two words"), None);
        assert!(unpresentable(&"x".repeat(MAX_TOKEN_BYTES + 1)).is_some());
        assert!(too_weak("x").is_some());
        assert!(too_weak("oms_admin_0f3a9b2c").is_none());
        for bad in [
            "",
            "  ",
            " lead",
            "trail ",
            "a\nb",
            "a\tb",
            "caf\u{e9}",
            "a\u{202e}b",
        ] {
            assert!(unpresentable(bad).is_some(), "{bad:?}");
        }
        // What hashes is what authenticates.
        let mut auth = Authenticator::default();
        auth.add(
            token_digest("two words"),
            TenantId::new("a"),
            Role::Viewer,
            "v".to_owned(),
        );
        assert!(auth.authenticate_header(Some("Bearer two words")).is_some());
    }

    #[test]
    fn a_tenant_the_data_directory_holds_without_credentials_still_counts() {
        let mut auth = Authenticator::default();
        principal("a", Role::Admin, "a-admin", &mut auth);
        auth.hold_tenants([TenantId::new("a")]);
        assert!(auth.single_tenant());
        assert_eq!(
            auth.authenticate("a-admin").map(|p| p.every_tenant),
            Some(true)
        );
        auth.hold_tenants([TenantId::new("b")]);
        assert!(!auth.single_tenant());
        assert_eq!(
            auth.authenticate("a-admin").map(|p| p.every_tenant),
            Some(false)
        );
        assert_eq!(
            auth.tenants_without_credentials().collect::<Vec<_>>(),
            [&TenantId::new("b")]
        );
    }
}
