package storage

import (
	"context"
	"io"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"

	"github.com/ckpt-dev/ckpt/storage/internal/relay"
)

// gocloud v0.47's azureblob writer panics whenever an upload started through
// Writer.Write fails (a failed conditional write, a cancelled context, a
// network or auth error): the upload goroutine sets its pipe reader to nil
// and Close then calls Close on that nil *io.PipeReader. Its Upload method
// (the path (*blob.Bucket).Upload takes for drivers that implement
// driver.Uploader) leaves the pipe alone and returns the error.
//
// uploadOnlyBucket therefore serves azblob locations: it forwards everything
// to the azureblob bucket, except that every writer hands its bytes to the
// inner bucket's Upload, through a pipe, so the panicking path is never used.

type uploadOnlyBucket struct {
	relay.Bucket
}

func newUploadOnlyBucket(inner *blob.Bucket) *blob.Bucket {
	return blob.NewBucket(&uploadOnlyBucket{relay.Bucket{Inner: inner, OwnsInner: true}})
}

func (b *uploadOnlyBucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	o := relay.WriterOptions(contentType, opts)
	if o.ContentType == "" { // Upload requires one
		o.ContentType, o.DisableContentTypeDetection = "application/octet-stream", false
	}
	return &pipeWriter{ctx: ctx, inner: b.Inner, key: key, opts: o}, nil
}

// pipeWriter streams Write calls into inner.Upload running in a goroutine.
type pipeWriter struct {
	ctx   context.Context
	inner *blob.Bucket
	key   string
	opts  *blob.WriterOptions

	pw       *io.PipeWriter
	done     chan struct{}
	err      error // set before done is closed, or by Upload
	uploaded bool  // Upload was used instead of Write
}

func (w *pipeWriter) start() {
	pr, pw := io.Pipe()
	w.pw, w.done = pw, make(chan struct{})
	go func() {
		defer close(w.done)
		w.err = w.inner.Upload(w.ctx, w.key, pr, w.opts)
		// Unblock pending Writes if the upload stopped reading early.
		if w.err != nil {
			pr.CloseWithError(w.err)
		} else {
			pr.Close()
		}
	}()
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if w.pw == nil {
		w.start()
	}
	return w.pw.Write(p)
}

// Upload implements driver.Uploader: a single synchronous Upload, no pipe.
func (w *pipeWriter) Upload(r io.Reader) error {
	w.uploaded = true
	w.err = w.inner.Upload(w.ctx, w.key, r, w.opts)
	return nil // reported by Close, as driver.Uploader callers expect
}

func (w *pipeWriter) Close() error {
	if w.uploaded {
		return w.err
	}
	if w.pw == nil {
		w.start() // nothing written: upload an empty object
	}
	w.pw.Close()
	<-w.done
	return w.err
}
