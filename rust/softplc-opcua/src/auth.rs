//! Who may connect and what each one may do: anonymous clients (loopback endpoints
//! only) with the configured role, and users with a password on the encrypted endpoint
//! with theirs. The role decides writes (through the variables' access levels) and the
//! engine methods (through UserExecutable and the call itself).

use std::collections::HashMap;

use opcua::crypto::SecurityPolicy;
use opcua::server::address_space::AccessLevel;
use opcua::server::authenticator::{
    user_pass_security_policy_id, AuthManager, Password, UserToken,
};
use opcua::server::{ServerEndpoint, ANONYMOUS_USER_TOKEN_ID};
use opcua::types::{Error, NodeId, StatusCode, UAString, UserTokenPolicy, UserTokenType};
use softplc_io::config::Role;

/// The policy id anonymous tokens are offered under.
const POLICY_ANONYMOUS: &str = "anonymous";

/// The server's users and roles.
pub struct PlcAuth {
    users: HashMap<String, (String, Role)>,
    anonymous: Option<Role>,
}

impl PlcAuth {
    /// Users `(name, password, role)` and the anonymous role (None: refused).
    pub fn new(
        users: impl IntoIterator<Item = (String, String, Role)>,
        anonymous: Option<Role>,
    ) -> PlcAuth {
        PlcAuth {
            users: users.into_iter().map(|(n, p, r)| (n, (p, r))).collect(),
            anonymous,
        }
    }

    /// The role of a session's user (None: unknown, which cannot happen for a session
    /// that was activated).
    pub fn role(&self, token: &UserToken) -> Option<Role> {
        if token.is_anonymous() {
            self.anonymous
        } else {
            self.users.get(&token.0).map(|(_, r)| *r)
        }
    }
}

/// Compares without an early exit, so that the time taken does not tell how much of a
/// guessed password was right (only its length).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait::async_trait]
impl AuthManager for PlcAuth {
    async fn authenticate_anonymous_token(&self, endpoint: &ServerEndpoint) -> Result<(), Error> {
        if self.anonymous.is_some() && endpoint.user_token_ids.contains(ANONYMOUS_USER_TOKEN_ID) {
            Ok(())
        } else {
            Err(Error::new(
                StatusCode::BadIdentityTokenRejected,
                "anonymous access is not allowed on this endpoint",
            ))
        }
    }

    async fn authenticate_username_identity_token(
        &self,
        endpoint: &ServerEndpoint,
        username: &str,
        password: &Password,
    ) -> Result<UserToken, Error> {
        let refused = || {
            Error::new(
                StatusCode::BadUserAccessDenied,
                "unknown user or wrong password",
            )
        };
        if endpoint.security_policy() == SecurityPolicy::None
            || !endpoint.user_token_ids.contains(username)
        {
            return Err(refused());
        }
        match self.users.get(username) {
            Some((p, _)) if same_secret(p.as_bytes(), password.get().as_bytes()) => {
                Ok(UserToken(username.to_string()))
            }
            _ => Err(refused()),
        }
    }

    fn effective_user_access_level(
        &self,
        token: &UserToken,
        user_access_level: AccessLevel,
        _node_id: &NodeId,
    ) -> AccessLevel {
        match self.role(token) {
            Some(r) if r.may_write() => user_access_level,
            _ => user_access_level - AccessLevel::CURRENT_WRITE,
        }
    }

    fn is_user_executable(&self, token: &UserToken, _method_id: &NodeId) -> bool {
        self.role(token).is_some_and(Role::may_control)
    }

    fn user_token_policies(&self, endpoint: &ServerEndpoint) -> Vec<UserTokenPolicy> {
        let mut out = Vec::new();
        if self.anonymous.is_some() && endpoint.user_token_ids.contains(ANONYMOUS_USER_TOKEN_ID) {
            out.push(UserTokenPolicy {
                policy_id: UAString::from(POLICY_ANONYMOUS),
                token_type: UserTokenType::Anonymous,
                issued_token_type: UAString::null(),
                issuer_endpoint_url: UAString::null(),
                security_policy_uri: UAString::null(),
            });
        }
        if endpoint.security_policy() != SecurityPolicy::None
            && endpoint
                .user_token_ids
                .iter()
                .any(|id| self.users.contains_key(id))
        {
            // The password travels under the endpoint's own policy (Basic256Sha256).
            out.push(UserTokenPolicy {
                policy_id: user_pass_security_policy_id(endpoint),
                token_type: UserTokenType::UserName,
                issued_token_type: UAString::null(),
                issuer_endpoint_url: UAString::null(),
                security_policy_uri: UAString::null(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }

    #[test]
    fn roles_follow_the_token() {
        let a = PlcAuth::new(
            [("eng".into(), "pw".into(), Role::Engineer)],
            Some(Role::Viewer),
        );
        assert_eq!(
            a.role(&UserToken(ANONYMOUS_USER_TOKEN_ID.into())),
            Some(Role::Viewer)
        );
        assert_eq!(a.role(&UserToken("eng".into())), Some(Role::Engineer));
        assert_eq!(a.role(&UserToken("x".into())), None);
        let lvl = AccessLevel::CURRENT_READ | AccessLevel::CURRENT_WRITE;
        let n = NodeId::null();
        assert_eq!(
            a.effective_user_access_level(&UserToken(ANONYMOUS_USER_TOKEN_ID.into()), lvl, &n)
                .bits(),
            AccessLevel::CURRENT_READ.bits()
        );
        assert_eq!(
            a.effective_user_access_level(&UserToken("eng".into()), lvl, &n)
                .bits(),
            lvl.bits()
        );
        assert!(a.is_user_executable(&UserToken("eng".into()), &n));
        assert!(!a.is_user_executable(&UserToken(ANONYMOUS_USER_TOKEN_ID.into()), &n));
    }
}
