// Package testenv decides whether an integration test can run on this
// machine. Outside CI a test whose prerequisites are missing is skipped with
// the reason; in CI (CI=true) the same test fails instead, because CI installs
// everything the suite needs and a skip there would hide a broken install.
package testenv
