// Package relay implements gocloud's driver.Bucket by forwarding every call
// to another *blob.Bucket through its public API. storage uses it to hand out
// independent *blob.Bucket values that share one mem bucket, and faultblob
// embeds it to put fault injection between a caller and a real bucket.
//
// Invariants: every call reaches the inner bucket unchanged (keys, options,
// IfNotExist, callbacks); errors come back as the inner bucket returned them,
// so their gcerrors codes and ErrorAs conversions survive.
package relay
