//! `GET /api/2.0/preview/scim/v2/Me` (reference §5).

use super::types::scim::User;
use super::{ApiError, Client, Method};

const ME: &str = "/api/2.0/preview/scim/v2/Me";

impl Client {
    /// The calling identity (`userName` is the email, or the application id
    /// of a service principal).
    pub async fn me(&self) -> Result<User, ApiError> {
        self.call_typed(Method::GET, ME, &[], None).await
    }
}
