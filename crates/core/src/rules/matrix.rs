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
        self.live_user(&device.user_id)?;
        self.tx.put_matrix_device(&device)?;
        Ok(Outcome::MatrixDevice(device))
    }

    fn live_user(&mut self, user_id: &str) -> Result<MatrixUser, CoreError> {
        match self.tx.matrix_user(user_id)? {
            Some(user) if !user.deactivated => Ok(user),
            _ => Err(CoreError::not_found(NotFoundKind::MatrixUser, user_id)),
        }
    }

    pub(super) fn put_matrix_filter(
        &mut self,
        user_id: &str,
        filter_id: &str,
        filter: &str,
    ) -> Result<Outcome, CoreError> {
        self.live_user(user_id)?;
        self.tx.put_matrix_filter(user_id, filter_id, filter)?;
        Ok(Outcome::Stored)
    }

    pub(super) fn set_matrix_profile(
        &mut self,
        user_id: &str,
        display_name: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
    ) -> Result<Outcome, CoreError> {
        let mut user = self.live_user(user_id)?;
        if let Some(name) = display_name {
            user.display_name = name;
        }
        if let Some(url) = avatar_url {
            user.avatar_url = url;
        }
        self.tx.put_matrix_user(&user)?;
        Ok(Outcome::MatrixUser(user))
    }

    pub(super) fn rename_matrix_device(
        &mut self,
        user_id: &str,
        device_id: &str,
        name: String,
    ) -> Result<Outcome, CoreError> {
        let mut device = self
            .tx
            .matrix_device(user_id, device_id)?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Device, device_id))?;
        device.display_name = Some(name);
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
