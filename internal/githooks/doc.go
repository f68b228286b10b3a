// Package githooks holds tests for the repository's git hooks.
package githooks
