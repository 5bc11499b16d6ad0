package loadtest

import "io"

// WriteHTML writes the self-contained HTML report (placeholder until the
// charts land).
func (rep *Report) WriteHTML(w io.Writer) error {
	_, err := io.WriteString(w, "<!doctype html><title>loadtest</title>")
	return err
}
