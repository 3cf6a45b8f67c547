package storage

// NewUploadOnlyBucket exposes the azblob writer wrapper to the external
// tests, which run the conformance suite through it over memblob.
var NewUploadOnlyBucket = newUploadOnlyBucket
