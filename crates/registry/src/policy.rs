//! The policy seam: consulted before every command and every observation, and able to
//! filter or redact each event of an event stream (REST reads, a transcript page
//! included, are not filtered: a policy that must hide text refuses
//! [`Action::ReadTranscript`]). [`AllowAll`] lets everything through (auth off);
//! [`RolePolicy`] is the shipped policy of roles and runtime grants (auth on).

use switchyard_protocol::{RuntimeId, WorkerEvent, WorkerId};

use crate::caller::{Caller, Role, WorkerScope};

/// What a caller wants to do.
///
/// Actions may be added (`#[non_exhaustive]`): a policy that matches on them should
/// decide what an action it does not know gets, and deny it unless allowing new
/// kinds of action is what it wants (`_ => Err(PolicyDenied("...".into()))`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action<'a> {
    /// Read a runtime's view.
    ViewRuntime,
    /// List a runtime's workers.
    ListWorkers,
    /// Start a worker from a profile.
    CreateWorker {
        /// The profile's name.
        profile: &'a str,
    },
    /// Read a worker's detail.
    ViewWorker,
    /// Send input.
    Input,
    /// Resize a terminal worker.
    Resize,
    /// Cancel in-flight work.
    Cancel,
    /// Stop the worker.
    Stop,
    /// Remove an ended worker.
    Delete,
    /// Read the transcript.
    ReadTranscript,
    /// Watch the live event stream.
    Observe,
}

impl Action<'_> {
    /// True for the actions that change something (the operator's commands); false for
    /// the ones that only read (the viewer's).
    pub fn is_command(&self) -> bool {
        match self {
            Action::ViewRuntime
            | Action::ListWorkers
            | Action::ViewWorker
            | Action::ReadTranscript
            | Action::Observe => false,
            Action::CreateWorker { .. }
            | Action::Input
            | Action::Resize
            | Action::Cancel
            | Action::Stop
            | Action::Delete => true,
        }
    }

    /// The verb used in refusals: "stop workers".
    pub fn describe(&self) -> &'static str {
        match self {
            Action::ViewRuntime => "view runtimes",
            Action::ListWorkers => "list workers",
            Action::CreateWorker { .. } => "create workers",
            Action::ViewWorker => "view workers",
            Action::Input => "send input",
            Action::Resize => "resize terminals",
            Action::Cancel => "cancel work",
            Action::Stop => "stop workers",
            Action::Delete => "delete workers",
            Action::ReadTranscript => "read transcripts",
            Action::Observe => "watch events",
        }
    }
}

/// One question to the policy.
#[derive(Debug, Clone, Copy)]
pub struct PolicyRequest<'a> {
    /// Who asks.
    pub caller: &'a Caller,
    /// The runtime addressed.
    pub runtime_id: &'a RuntimeId,
    /// The worker addressed, if any.
    pub worker_id: Option<&'a WorkerId>,
    /// What is asked.
    pub action: Action<'a>,
}

/// A refusal; the text is shown to the client with `403 forbidden`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyDenied(pub String);

/// Permission and redaction rules. Implementations must be cheap: they run on every
/// call and every event.
///
/// A policy that wraps another (to add a rule to [`RolePolicy`], say) must forward
/// every method it does not decide itself: the defaults of the optional methods
/// would otherwise switch worker ownership and event filtering off.
pub trait Policy: Send + Sync + 'static {
    /// Allows or refuses a call before it is routed.
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied>;

    /// Allows or refuses an admin route (metrics, reload). The default admits the
    /// admin role only.
    fn authorize_admin(&self, caller: &Caller) -> Result<(), PolicyDenied> {
        if caller.role() == Role::Admin {
            Ok(())
        } else {
            Err(PolicyDenied(format!(
                "the {} role may not use admin routes; they need an admin token",
                caller.role()
            )))
        }
    }

    /// True when which workers `caller` reaches depends on their owners
    /// ([`Policy::reaches_worker`]); the registry then learns a worker's owner before
    /// letting the caller at it, and filters lists. The default is false. With it,
    /// the worker counts of `GET /api/runtimes` are the caller's own: those of the
    /// owner named [`Caller::owner_name`] (none for a caller without a name).
    fn scopes_workers(&self, _caller: &Caller) -> bool {
        false
    }

    /// Whether `caller` reaches a worker of `runtime_id` owned by `owner` (`None`: one
    /// created without auth or directly on the runtime). A worker it does not reach
    /// is absent from its lists and `404 worker_not_found` everywhere else. Asked for
    /// every worker listed or viewed; for commands and reads of other workers only
    /// when [`Policy::scopes_workers`] says so. The default reaches every worker.
    fn reaches_worker(
        &self,
        _caller: &Caller,
        _runtime_id: &RuntimeId,
        _owner: Option<&str>,
    ) -> bool {
        true
    }

    /// True when the registry should learn the owner of every worker a command
    /// addresses, for audit lines, even for callers who reach every worker (at most
    /// one extra call per worker, remembered). The default is false.
    fn tracks_owners(&self) -> bool {
        false
    }

    /// True when [`Policy::filter_event`] may drop or change events. When false, the
    /// hub skips it and encodes each event once for all viewers. The default is true,
    /// so a policy that overrides `filter_event` is never bypassed by mistake.
    fn filters_events(&self) -> bool {
        true
    }

    /// Filters (`None`) or rewrites one event of an event stream (its snapshot
    /// included) before `caller` sees it. REST reads are not filtered.
    fn filter_event(
        &self,
        _caller: &Caller,
        _runtime_id: &RuntimeId,
        _worker_id: &WorkerId,
        event: WorkerEvent,
    ) -> Option<WorkerEvent> {
        Some(event)
    }
}

/// The pass-through default, for a backend without auth (everyone is admin).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Policy for AllowAll {
    fn authorize(&self, _request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        Ok(())
    }

    fn authorize_admin(&self, _caller: &Caller) -> Result<(), PolicyDenied> {
        Ok(())
    }

    fn filters_events(&self) -> bool {
        false
    }
}

/// The shipped policy when auth is on: a caller may use only the runtimes its token
/// grants, its role decides what it may do there (viewer: read and watch; operator:
/// also every command; admin: also the admin routes), and its worker scope which
/// workers it reaches (`own`: those it created; `all`; admins reach all). Events
/// pass through unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct RolePolicy;

impl RolePolicy {
    /// The weakest role allowed to do `action`.
    pub fn required_role(action: &Action<'_>) -> Role {
        if action.is_command() {
            Role::Operator
        } else {
            Role::Viewer
        }
    }
}

impl Policy for RolePolicy {
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        let caller = request.caller;
        if !caller.may_use(request.runtime_id) {
            return Err(PolicyDenied(format!(
                "this identity may not use runtime {}; an admin can grant it in the token's runtimes",
                request.runtime_id
            )));
        }
        let needed = Self::required_role(&request.action);
        if caller.role() < needed {
            return Err(PolicyDenied(format!(
                "the {} role may not {}; that needs the {needed} role",
                caller.role(),
                request.action.describe()
            )));
        }
        Ok(())
    }

    fn scopes_workers(&self, caller: &Caller) -> bool {
        caller.workers() == WorkerScope::Own
    }

    fn reaches_worker(
        &self,
        caller: &Caller,
        _runtime_id: &RuntimeId,
        owner: Option<&str>,
    ) -> bool {
        match caller.workers() {
            WorkerScope::All => true,
            WorkerScope::Own => owner.is_some() && owner == caller.owner_name(),
        }
    }

    fn tracks_owners(&self) -> bool {
        true
    }

    fn filters_events(&self) -> bool {
        false
    }
}

/// Another policy with one more rule in front of it: [`Policy::authorize`] asks
/// `rule` first and then the inner policy; every other method is the inner
/// policy's, so wrapping [`RolePolicy`] keeps its worker ownership and grants.
/// The way to add a rule without writing out the whole trait
/// (`BackendBuilder::wrap_policy` in the server crate takes it directly).
///
/// ```
/// use std::sync::Arc;
/// use switchyard_registry::{Action, Policy, PolicyDenied, RolePolicy, WithRule};
///
/// let policy = WithRule::new(Arc::new(RolePolicy), |request| {
///     if request.action == Action::Delete {
///         return Err(PolicyDenied("workers are kept here; stop them instead".into()));
///     }
///     Ok(())
/// });
/// # let _: &dyn Policy = &policy;
/// ```
pub struct WithRule<F> {
    inner: std::sync::Arc<dyn Policy>,
    rule: F,
}

impl<F> WithRule<F>
where
    F: Fn(&PolicyRequest<'_>) -> Result<(), PolicyDenied> + Send + Sync + 'static,
{
    /// `inner` with `rule` asked first on every call.
    pub fn new(inner: std::sync::Arc<dyn Policy>, rule: F) -> Self {
        Self { inner, rule }
    }
}

impl<F> std::fmt::Debug for WithRule<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithRule").finish_non_exhaustive()
    }
}

impl<F> Policy for WithRule<F>
where
    F: Fn(&PolicyRequest<'_>) -> Result<(), PolicyDenied> + Send + Sync + 'static,
{
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        (self.rule)(request)?;
        self.inner.authorize(request)
    }

    fn authorize_admin(&self, caller: &Caller) -> Result<(), PolicyDenied> {
        self.inner.authorize_admin(caller)
    }

    fn scopes_workers(&self, caller: &Caller) -> bool {
        self.inner.scopes_workers(caller)
    }

    fn reaches_worker(&self, caller: &Caller, runtime_id: &RuntimeId, owner: Option<&str>) -> bool {
        self.inner.reaches_worker(caller, runtime_id, owner)
    }

    fn tracks_owners(&self) -> bool {
        self.inner.tracks_owners()
    }

    fn filters_events(&self) -> bool {
        self.inner.filters_events()
    }

    fn filter_event(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker_id: &WorkerId,
        event: WorkerEvent,
    ) -> Option<WorkerEvent> {
        self.inner
            .filter_event(caller, runtime_id, worker_id, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::{RuntimeGlob, RuntimeGrants};

    const ACTIONS: [Action<'static>; 11] = [
        Action::ViewRuntime,
        Action::ListWorkers,
        Action::CreateWorker { profile: "echo" },
        Action::ViewWorker,
        Action::Input,
        Action::Resize,
        Action::Cancel,
        Action::Stop,
        Action::Delete,
        Action::ReadTranscript,
        Action::Observe,
    ];

    fn caller(role: Role, grants: &[&str]) -> Caller {
        let runtimes = if grants.is_empty() {
            RuntimeGrants::All
        } else {
            RuntimeGrants::Only(
                grants
                    .iter()
                    .map(|g| RuntimeGlob::new(g).unwrap())
                    .collect(),
            )
        };
        Caller::identified("someone", role, runtimes, WorkerScope::All)
    }

    fn check(policy: &dyn Policy, caller: &Caller, runtime: &str, action: Action<'_>) -> bool {
        let runtime_id = RuntimeId::new(runtime).unwrap();
        let worker_id = WorkerId::new("w-1").unwrap();
        policy
            .authorize(&PolicyRequest {
                caller,
                runtime_id: &runtime_id,
                worker_id: Some(&worker_id),
                action,
            })
            .is_ok()
    }

    /// A rule added with [`WithRule`] refuses first; everything else (grants, roles,
    /// worker scopes, owner tracking, event filtering) is still the inner policy's.
    #[test]
    fn a_rule_added_in_front_keeps_everything_else_of_the_inner_policy() {
        let policy = WithRule::new(std::sync::Arc::new(RolePolicy), |request| {
            if request.action == Action::Delete {
                return Err(PolicyDenied("no deletes".into()));
            }
            Ok(())
        });
        let operator = caller(Role::Operator, &["build-*"]);
        assert!(!check(&policy, &operator, "build-1", Action::Delete));
        assert!(check(&policy, &operator, "build-1", Action::Stop));
        assert!(
            !check(&policy, &operator, "other", Action::Stop),
            "grants kept"
        );
        let viewer = caller(Role::Viewer, &[]);
        assert!(
            !check(&policy, &viewer, "build-1", Action::Input),
            "roles kept"
        );
        assert!(policy.authorize_admin(&viewer).is_err());
        assert!(policy.authorize_admin(&caller(Role::Admin, &[])).is_ok());
        let own = Caller::identified("otto", Role::Operator, RuntimeGrants::All, WorkerScope::Own);
        let runtime = RuntimeId::new("build-1").unwrap();
        assert!(policy.scopes_workers(&own), "worker scopes kept");
        assert!(policy.reaches_worker(&own, &runtime, Some("otto")));
        assert!(!policy.reaches_worker(&own, &runtime, Some("alice")));
        assert!(!policy.reaches_worker(&own, &runtime, None));
        assert!(policy.tracks_owners());
        assert!(!policy.filters_events());
    }

    #[test]
    fn roles_decide_what_may_be_done() {
        // (role, allowed actions as a mask over ACTIONS: R = reads, C = commands)
        let table: [(Role, bool, bool); 3] = [
            (Role::Viewer, true, false),
            (Role::Operator, true, true),
            (Role::Admin, true, true),
        ];
        for (role, reads, commands) in table {
            let who = caller(role, &[]);
            for action in ACTIONS {
                let expected = if action.is_command() { commands } else { reads };
                assert_eq!(
                    check(&RolePolicy, &who, "local", action),
                    expected,
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn runtime_grants_decide_where() {
        // (grants, runtime, allowed)
        let table: &[(&[&str], &str, bool)] = &[
            (&[], "anything", true),
            (&["local"], "local", true),
            (&["local"], "build-1", false),
            (&["local", "build-*"], "build-1", true),
            (&["local", "build-*"], "builder", false),
            (&["gpu-?"], "gpu-1", true),
            (&["gpu-?"], "gpu-10", false),
        ];
        for (grants, runtime, allowed) in table {
            for role in Role::ALL {
                let who = caller(role, grants);
                assert_eq!(
                    check(&RolePolicy, &who, runtime, Action::ViewWorker),
                    *allowed,
                    "{role} {grants:?} {runtime}"
                );
                // A runtime outside the grants is refused for every action, even
                // those the role would allow.
                if !allowed {
                    for action in ACTIONS {
                        assert!(!check(&RolePolicy, &who, runtime, action));
                    }
                }
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        let viewer = caller(Role::Viewer, &["local"]);
        let rt = RuntimeId::new("local").unwrap();
        let denied = RolePolicy
            .authorize(&PolicyRequest {
                caller: &viewer,
                runtime_id: &rt,
                worker_id: None,
                action: Action::Stop,
            })
            .unwrap_err();
        assert_eq!(
            denied.0,
            "the viewer role may not stop workers; that needs the operator role"
        );
        let other = RuntimeId::new("build-1").unwrap();
        let denied = RolePolicy
            .authorize(&PolicyRequest {
                caller: &viewer,
                runtime_id: &other,
                worker_id: None,
                action: Action::ListWorkers,
            })
            .unwrap_err();
        assert!(denied.0.contains("may not use runtime build-1"), "{denied}");
    }

    #[test]
    fn admin_routes_need_the_admin_role() {
        for (role, allowed) in [
            (Role::Viewer, false),
            (Role::Operator, false),
            (Role::Admin, true),
        ] {
            assert_eq!(
                RolePolicy.authorize_admin(&caller(role, &[])).is_ok(),
                allowed,
                "{role}"
            );
        }
        assert!(AllowAll.authorize_admin(&Caller::open()).is_ok());
    }

    #[test]
    fn worker_scopes_decide_which_workers() {
        let who = |role, scope| Caller::identified("alice", role, RuntimeGrants::All, scope);
        let rt = RuntimeId::new("local").unwrap();
        // (role, scope, owner, reaches)
        let table: &[(Role, WorkerScope, Option<&str>, bool)] = &[
            (Role::Viewer, WorkerScope::Own, Some("alice"), true),
            (Role::Viewer, WorkerScope::Own, Some("bob"), false),
            (Role::Viewer, WorkerScope::Own, None, false),
            (Role::Operator, WorkerScope::Own, Some("alice"), true),
            (Role::Operator, WorkerScope::Own, Some("alicia"), false),
            (Role::Operator, WorkerScope::Own, None, false),
            (Role::Viewer, WorkerScope::All, Some("bob"), true),
            (Role::Operator, WorkerScope::All, None, true),
            (Role::Admin, WorkerScope::Own, Some("bob"), true),
            (Role::Admin, WorkerScope::Own, None, true),
        ];
        for (role, scope, owner, reaches) in table {
            let caller = who(*role, *scope);
            assert_eq!(
                RolePolicy.reaches_worker(&caller, &rt, *owner),
                *reaches,
                "{role} {scope:?} {owner:?}"
            );
            assert_eq!(
                RolePolicy.scopes_workers(&caller),
                *role != Role::Admin && *scope == WorkerScope::Own
            );
        }
        assert!(RolePolicy.tracks_owners());
        let open = Caller::open();
        assert!(!AllowAll.scopes_workers(&open));
        assert!(AllowAll.reaches_worker(&open, &rt, Some("bob")));
        assert!(!AllowAll.tracks_owners());
    }

    #[test]
    fn allow_all_allows_everything_for_the_open_caller() {
        let open = Caller::open();
        for action in ACTIONS {
            assert!(check(&AllowAll, &open, "anything", action));
        }
    }
}
