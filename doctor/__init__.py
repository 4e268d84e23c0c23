"""Set-up checks (`rolesync doctor`) and Kinde webhook registration."""
