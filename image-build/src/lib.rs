//! nodeboot-image: builds node images with the agent inside.
