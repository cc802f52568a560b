//! Empty: the tests are in tests/browser.rs.
