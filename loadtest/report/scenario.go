package report

import "encoding/json"

// scenarioHead is what the summary and the HTML page say about the
// scenario: its name and shape. Decoding only these keys keeps this
// package free of loadtest.Scenario.
type scenarioHead struct {
	Name        string  `json:"name"`
	Rooms       int     `json:"rooms"`
	Hosts       int     `json:"hosts"`
	Guests      int     `json:"guests"`
	Audience    int     `json:"audience"`
	ChurnPerMin float64 `json:"churn_per_min"`
}

// scenarioHead decodes rep.Scenario's head. A report without a readable
// scenario gives the zero head: the summary of its figures is still worth
// printing.
func (rep *Report) scenarioHead() scenarioHead {
	var h scenarioHead
	if len(rep.Scenario) > 0 {
		_ = json.Unmarshal(rep.Scenario, &h)
	}
	return h
}
