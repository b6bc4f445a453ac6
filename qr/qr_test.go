package qr_test

import (
	"bytes"
	"image"
	"image/png"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/lockstep/lockstep/qr"
)

// modules samples the image at the centre of each module of a QR symbol of
// n modules per side (quiet zone included) and reports which are dark.
func modules(t *testing.T, img image.Image, n int) [][]bool {
	t.Helper()
	b := img.Bounds()
	out := make([][]bool, n)
	for y := range n {
		out[y] = make([]bool, n)
		for x := range n {
			px := b.Min.X + (2*x+1)*b.Dx()/(2*n)
			py := b.Min.Y + (2*y+1)*b.Dy()/(2*n)
			r, g, bl, _ := img.At(px, py).RGBA()
			out[y][x] = r+g+bl < 3*0x8000
		}
	}
	return out
}

func TestPNGEncodesTheContent(t *testing.T) {
	const content = "https://lockstep.example/join/ABC234"
	data, err := qr.PNG(content, 0)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != qr.Size || b.Dy() != qr.Size {
		t.Fatalf("image is %dx%d, want %dx%d", b.Dx(), b.Dy(), qr.Size, qr.Size)
	}
	want, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	bitmap := want.Bitmap()
	got := modules(t, img, len(bitmap))
	for y := range bitmap {
		for x := range bitmap[y] {
			if got[y][x] != bitmap[y][x] {
				t.Fatalf("module (%d,%d) is dark=%v, the symbol of %q has dark=%v", x, y, got[y][x], content, bitmap[y][x])
			}
		}
	}
	other, err := qr.PNG("https://lockstep.example/join/ABC235", 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, data) {
		t.Fatal("two different contents gave the same image")
	}
}
