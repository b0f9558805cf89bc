//! [`Caller`]: who is asking. The server establishes it once per request (a bearer
//! token, a session cookie, or nobody when auth is off) and passes it with every
//! registry call, so the [`crate::Policy`] can decide by identity.

use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};
pub use switchyard_protocol::Role;
use switchyard_protocol::RuntimeId;

/// Which workers of its runtimes a caller reaches.
///
/// Exhaustive on purpose: the contract fixes `own` and `all` (a token's `workers`),
/// and a policy must decide each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerScope {
    /// Only the workers it created.
    Own,
    /// Every worker of the runtimes it may use.
    All,
}

impl WorkerScope {
    /// The lowercase name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerScope::Own => "own",
            WorkerScope::All => "all",
        }
    }
}

/// A runtime id pattern: the id characters, plus `*` (any run, possibly empty) and `?`
/// (any one character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeGlob(String);

/// Why a pattern is not a [`RuntimeGlob`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobError {
    /// The pattern is empty.
    #[error("a runtime pattern must not be empty")]
    Empty,
    /// The pattern holds a character no runtime id can hold.
    #[error(
        "a runtime pattern holds only A-Z a-z 0-9 . _ - and the wildcards * and ?; {0:?} is not allowed"
    )]
    BadChar(char),
    /// The pattern is too long to match any id.
    #[error("a runtime pattern is at most 64 characters long")]
    TooLong,
}

impl RuntimeGlob {
    /// Checks and wraps a pattern.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if pattern.chars().count() > 64 {
            return Err(GlobError::TooLong);
        }
        if let Some(bad) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*' | '?')))
        {
            return Err(GlobError::BadChar(bad));
        }
        Ok(Self(pattern.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `id` matches the whole pattern.
    pub fn matches(&self, id: &str) -> bool {
        wildcard_match(self.0.as_bytes(), id.as_bytes())
    }
}

/// Iterative glob matching with backtracking to the last `*` only: linear in practice,
/// never exponential.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The runtimes a caller may use.
///
/// Exhaustive on purpose: the contract's `runtimes` is every runtime (absent) or a
/// list of patterns, and a policy must decide each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeGrants {
    /// Every runtime.
    All,
    /// Runtimes whose id matches one of these patterns.
    Only(Vec<RuntimeGlob>),
}

impl RuntimeGrants {
    /// True when `runtime_id` is granted.
    pub fn allows(&self, runtime_id: &RuntimeId) -> bool {
        match self {
            RuntimeGrants::All => true,
            RuntimeGrants::Only(globs) => globs.iter().any(|g| g.matches(runtime_id.as_str())),
        }
    }
}

struct CallerInner {
    name: String,
    role: Role,
    runtimes: RuntimeGrants,
    workers: WorkerScope,
    authenticated: bool,
}

/// Who is asking: a name, a role, runtime grants and a worker scope. Cheap to clone.
///
/// Without auth every request comes from [`Caller::open`]: an anonymous admin who
/// reaches everything and owns nothing.
#[derive(Clone)]
pub struct Caller(Arc<CallerInner>);

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("name", &self.0.name)
            .field("role", &self.0.role)
            .field("runtimes", &self.0.runtimes)
            .field("workers", &self.0.workers)
            .field("authenticated", &self.0.authenticated)
            .finish()
    }
}

/// The name of the anonymous caller when auth is off.
pub const ANONYMOUS: &str = "anonymous";

static OPEN: LazyLock<Caller> = LazyLock::new(|| {
    Caller(Arc::new(CallerInner {
        name: ANONYMOUS.to_owned(),
        role: Role::Admin,
        runtimes: RuntimeGrants::All,
        workers: WorkerScope::All,
        authenticated: false,
    }))
});

static NOBODY: LazyLock<Caller> = LazyLock::new(|| {
    Caller(Arc::new(CallerInner {
        name: "-".to_owned(),
        role: Role::Viewer,
        runtimes: RuntimeGrants::Only(Vec::new()),
        workers: WorkerScope::Own,
        authenticated: false,
    }))
});

impl Caller {
    /// The caller of every request when auth is off: anonymous, admin, everything.
    pub fn open() -> Self {
        OPEN.clone()
    }

    /// Nobody: the caller of a public route (no credentials needed) when auth is on.
    /// A viewer of no runtime who owns nothing, so that a route wrongly marked public
    /// reaches nothing through the [`crate::RolePolicy`].
    pub fn nobody() -> Self {
        NOBODY.clone()
    }

    /// An authenticated identity.
    pub fn identified(
        name: impl Into<String>,
        role: Role,
        runtimes: RuntimeGrants,
        workers: WorkerScope,
    ) -> Self {
        Self(Arc::new(CallerInner {
            name: name.into(),
            role,
            runtimes,
            workers,
            authenticated: true,
        }))
    }

    /// The identity's name (`anonymous` when auth is off).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.0.role
    }

    /// The runtimes it may use.
    pub fn runtimes(&self) -> &RuntimeGrants {
        &self.0.runtimes
    }

    /// The workers it reaches: admins reach all, whatever their configuration says.
    pub fn workers(&self) -> WorkerScope {
        match self.0.role {
            Role::Admin => WorkerScope::All,
            _ => self.0.workers,
        }
    }

    /// True for a token or session identity; false for the open caller.
    pub fn is_authenticated(&self) -> bool {
        self.0.authenticated
    }

    /// The name recorded as the owner of workers it creates: none without auth.
    pub fn owner_name(&self) -> Option<&str> {
        self.0.authenticated.then_some(self.0.name.as_str())
    }

    /// True when it may use `runtime_id`.
    pub fn may_use(&self, runtime_id: &RuntimeId) -> bool {
        self.0.runtimes.allows(runtime_id)
    }

    /// True when both are clones of one caller: the same credential, as the
    /// authenticator made it (not merely equal fields). A WebSocket opened by a
    /// credential that a reload removed or changed is told apart this way.
    pub fn same_as(&self, other: &Caller) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// True when both have the same name, role, grants, worker scope and kind.
    pub fn same_rights(&self, other: &Caller) -> bool {
        let (a, b) = (&*self.0, &*other.0);
        a.name == b.name
            && a.role == b.role
            && a.runtimes == b.runtimes
            && a.workers == b.workers
            && a.authenticated == b.authenticated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_ids() {
        let cases: &[(&str, &str, bool)] = &[
            ("local", "local", true),
            ("local", "local-2", false),
            ("local", "loca", false),
            ("build-*", "build-1", true),
            ("build-*", "build-", true),
            ("build-*", "build", false),
            ("build-*", "xbuild-1", false),
            ("*", "anything.at_all", true),
            ("*-eu", "gpu-eu", true),
            ("*-eu", "gpu-eu-2", false),
            ("b?ild", "build", true),
            ("b?ild", "bild", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*a*a*a*a*b", &"a".repeat(60), false),
            ("**", "x", true),
        ];
        for (pattern, id, expected) in cases {
            let glob = RuntimeGlob::new(pattern).unwrap();
            assert_eq!(glob.matches(id), *expected, "{pattern} vs {id}");
        }
    }

    #[test]
    fn bad_globs_are_refused() {
        assert_eq!(RuntimeGlob::new(""), Err(GlobError::Empty));
        assert_eq!(RuntimeGlob::new("a/b"), Err(GlobError::BadChar('/')));
        assert_eq!(RuntimeGlob::new("a b"), Err(GlobError::BadChar(' ')));
        assert_eq!(RuntimeGlob::new(&"x".repeat(65)), Err(GlobError::TooLong));
    }

    #[test]
    fn the_open_caller_is_an_anonymous_admin_who_owns_nothing() {
        let open = Caller::open();
        assert_eq!(open.role(), Role::Admin);
        assert_eq!(open.name(), ANONYMOUS);
        assert_eq!(open.owner_name(), None);
        assert!(!open.is_authenticated());
        assert_eq!(open.workers(), WorkerScope::All);
        assert!(open.may_use(&RuntimeId::new("x").unwrap()));
    }

    #[test]
    fn nobody_may_use_no_runtime() {
        let nobody = Caller::nobody();
        assert!(!nobody.may_use(&RuntimeId::new("local").unwrap()));
        assert_eq!(nobody.role(), Role::Viewer);
        assert_eq!(nobody.owner_name(), None);
        assert!(!nobody.is_authenticated());
    }

    #[test]
    fn admins_reach_all_workers_whatever_they_say() {
        let admin = Caller::identified("a", Role::Admin, RuntimeGrants::All, WorkerScope::Own);
        assert_eq!(admin.workers(), WorkerScope::All);
        let op = Caller::identified("o", Role::Operator, RuntimeGrants::All, WorkerScope::Own);
        assert_eq!(op.workers(), WorkerScope::Own);
        assert_eq!(op.owner_name(), Some("o"));
    }

    #[test]
    fn roles_parse_and_order() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }
}
