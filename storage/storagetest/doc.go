// Package storagetest provides the storage locations tests run against: an
// in-process mem bucket and a temporary directory always, and S3, GCS and
// Azure emulators when the environment names them.
//
// Environment:
//
//   - CKPT_TEST_S3_URL, CKPT_TEST_GCS_URL, CKPT_TEST_AZURE_URL: base URLs of an
//     existing bucket or container (for example
//     "s3://ckpt-test?endpoint=http://127.0.0.1:9000&use_path_style=true&disable_https=true&region=us-east-1",
//     "gs://ckpt-test", "azblob://ckpt-test?protocol=http&domain=127.0.0.1:10000").
//     Credentials come from each driver's usual variables (AWS_ACCESS_KEY_ID
//     and AWS_SECRET_ACCESS_KEY, STORAGE_EMULATOR_HOST,
//     AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY).
//   - CKPT_REQUIRE_SERVICES=1 turns a missing variable into a test failure
//     instead of a logged skip.
//
// Invariants: every Backends call returns locations no other call shares
// (a fresh mem name, a fresh directory, a fresh random prefix under each
// service URL), and the service prefixes are emptied when the test ends.
package storagetest
