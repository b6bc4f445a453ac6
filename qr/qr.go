// Package qr renders QR codes as PNG images (the session join codes' images).
package qr

import (
	"fmt"

	qrcode "github.com/skip2/go-qrcode"
)

// Size is the default image size in pixels.
const Size = 320

// PNG renders content as a QR code (medium error correction, with the
// standard quiet zone) in a size×size PNG image.
func PNG(content string, size int) ([]byte, error) {
	if size <= 0 {
		size = Size
	}
	png, err := qrcode.Encode(content, qrcode.Medium, size)
	if err != nil {
		return nil, fmt.Errorf("qr: encode %d bytes: %w", len(content), err)
	}
	return png, nil
}
