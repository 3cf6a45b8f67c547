package relay

import (
	"context"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// defaultPageSize is used when a ListPaged caller asks for no maximum.
const defaultPageSize = 1000

// Bucket is a driver.Bucket that forwards to Inner. It is safe for concurrent
// use when Inner is.
type Bucket struct {
	// Inner receives every call.
	Inner *blob.Bucket
	// OwnsInner makes Close close Inner; otherwise Close does nothing.
	OwnsInner bool
}

var _ driver.Bucket = (*Bucket)(nil)

// ErrorCode implements driver.Bucket: errors from Inner carry their code.
func (b *Bucket) ErrorCode(err error) gcerrors.ErrorCode { return gcerrors.Code(err) }

// As implements driver.Bucket by asking Inner.
func (b *Bucket) As(i any) bool { return b.Inner.As(i) }

// ErrorAs implements driver.Bucket by asking Inner.
func (b *Bucket) ErrorAs(err error, i any) bool { return b.Inner.ErrorAs(err, i) }

// Attributes implements driver.Bucket.
func (b *Bucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := b.Inner.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{
		CacheControl:       a.CacheControl,
		ContentDisposition: a.ContentDisposition,
		ContentEncoding:    a.ContentEncoding,
		ContentLanguage:    a.ContentLanguage,
		ContentType:        a.ContentType,
		Metadata:           a.Metadata,
		CreateTime:         a.CreateTime,
		ModTime:            a.ModTime,
		Size:               a.Size,
		MD5:                a.MD5,
		ETag:               a.ETag,
		AsFunc:             a.As,
	}, nil
}

// ListPaged implements driver.Bucket with one Inner.ListPage call.
func (b *Bucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	token := opts.PageToken
	if len(token) == 0 {
		token = blob.FirstPageToken
	}
	size := opts.PageSize
	if size <= 0 {
		size = defaultPageSize
	}
	objs, next, err := b.Inner.ListPage(ctx, token, size, &blob.ListOptions{
		Prefix:     opts.Prefix,
		Delimiter:  opts.Delimiter,
		BeforeList: opts.BeforeList,
	})
	if err != nil {
		return nil, err
	}
	page := &driver.ListPage{NextPageToken: next, Objects: make([]*driver.ListObject, len(objs))}
	for i, o := range objs {
		page.Objects[i] = &driver.ListObject{
			Key:     o.Key,
			ModTime: o.ModTime,
			Size:    o.Size,
			MD5:     o.MD5,
			IsDir:   o.IsDir,
			AsFunc:  o.As,
		}
	}
	return page, nil
}

// NewRangeReader implements driver.Bucket.
func (b *Bucket) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	r, err := b.Inner.NewRangeReader(ctx, key, offset, length, &blob.ReaderOptions{BeforeRead: opts.BeforeRead})
	if err != nil {
		return nil, err
	}
	return &Reader{R: r, attrs: driver.ReaderAttributes{
		ContentType: r.ContentType(),
		ModTime:     r.ModTime(),
		Size:        r.Size(),
	}}, nil
}

// Reader is the driver.Reader returned by Bucket.NewRangeReader.
type Reader struct {
	// R is the reader opened on the inner bucket.
	R     *blob.Reader
	attrs driver.ReaderAttributes
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) { return r.R.Read(p) }

// Close implements io.Closer.
func (r *Reader) Close() error { return r.R.Close() }

// Attributes implements driver.Reader.
func (r *Reader) Attributes() *driver.ReaderAttributes { return &r.attrs }

// As implements driver.Reader.
func (r *Reader) As(i any) bool { return r.R.As(i) }

// WriterOptions converts driver options back to the portable ones, for a
// write of contentType. ContentMD5 is left out: the outer *blob.Writer has
// already verified it by the time the driver's Close runs.
func WriterOptions(contentType string, opts *driver.WriterOptions) *blob.WriterOptions {
	return &blob.WriterOptions{
		BufferSize:                  opts.BufferSize,
		MaxConcurrency:              opts.MaxConcurrency,
		CacheControl:                opts.CacheControl,
		ContentDisposition:          opts.ContentDisposition,
		ContentEncoding:             opts.ContentEncoding,
		ContentLanguage:             opts.ContentLanguage,
		ContentType:                 contentType,
		DisableContentTypeDetection: contentType == "",
		Metadata:                    opts.Metadata,
		BeforeWrite:                 opts.BeforeWrite,
		IfNotExist:                  opts.IfNotExist,
	}
}

// NewTypedWriter implements driver.Bucket with an Inner writer; the returned
// *blob.Writer streams to Inner as it is written.
func (b *Bucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	return b.Inner.NewWriter(ctx, key, WriterOptions(contentType, opts))
}

// Copy implements driver.Bucket.
func (b *Bucket) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	return b.Inner.Copy(ctx, dstKey, srcKey, &blob.CopyOptions{BeforeCopy: opts.BeforeCopy})
}

// Delete implements driver.Bucket.
func (b *Bucket) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	return b.Inner.DeleteWithOptions(ctx, key, &blob.DeleteOptions{BeforeDelete: opts.BeforeDelete})
}

// SignedURL implements driver.Bucket.
func (b *Bucket) SignedURL(ctx context.Context, key string, opts *driver.SignedURLOptions) (string, error) {
	return b.Inner.SignedURL(ctx, key, &blob.SignedURLOptions{
		Expiry:                   opts.Expiry,
		Method:                   opts.Method,
		ContentType:              opts.ContentType,
		EnforceAbsentContentType: opts.EnforceAbsentContentType,
		BeforeSign:               opts.BeforeSign,
	})
}

// Close implements driver.Bucket; it closes Inner only if OwnsInner is set.
func (b *Bucket) Close() error {
	if b.OwnsInner {
		return b.Inner.Close()
	}
	return nil
}
