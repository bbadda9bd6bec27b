// SPDX-License-Identifier: GPL-2.0-only
//! Nothing to link: this package holds the VM integration tests
//! (`tests/vm/`), built only with `--features vm`. See docs/testing.md.
