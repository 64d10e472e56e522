//! The rules of Matrix accounts: one user per id, devices only of live users.

use super::Cx;
use crate::error::{CoreError, NotFoundKind};
use crate::matrix::{MatrixDevice, MatrixUser};
use crate::store::Outcome;

impl Cx<'_> {
    pub(super) fn create_matrix_user(&mut self, user: MatrixUser, device: MatrixDevice) -> Result<Outcome, CoreError> {
        if self.tx.matrix_user(&user.user_id)?.is_some() {
            return Err(CoreError::AlreadyExists { what: "user", name: user.user_id });
        }
        self.tx.put_matrix_user(&user)?;
        self.tx.put_matrix_device(&device)?;
        Ok(Outcome::MatrixDevice(device))
    }

    pub(super) fn put_matrix_device(&mut self, device: MatrixDevice) -> Result<Outcome, CoreError> {
        match self.tx.matrix_user(&device.user_id)? {
            Some(user) if !user.deactivated => {}
            _ => return Err(CoreError::not_found(NotFoundKind::MatrixUser, &device.user_id)),
        }
        self.tx.put_matrix_device(&device)?;
        Ok(Outcome::MatrixDevice(device))
    }

    pub(super) fn remove_matrix_devices(
        &mut self,
        user_id: &str,
        device_id: Option<&str>,
    ) -> Result<Outcome, CoreError> {
        Ok(Outcome::MatrixDevicesRemoved(self.tx.delete_matrix_devices(user_id, device_id)?))
    }
}
