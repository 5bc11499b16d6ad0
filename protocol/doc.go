// Package protocol holds the wire types of the relay's signaling protocol,
// version 1 (docs/protocol.md): one Go type per message, the error codes, and
// the validation of client messages. It has no dependencies beyond the
// standard library so that clients (the load generator, tests, apps) can use
// it without importing the server.
package protocol
