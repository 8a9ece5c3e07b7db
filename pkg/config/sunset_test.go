package config

import (
	"testing"
	"time"
)

func TestAPIV1Sunset(t *testing.T) {
	if got := mustLoad(t, ":8081", nil).APIV1Sunset; !got.IsZero() {
		t.Fatalf("APIV1Sunset defaults to %v, want zero (off)", got)
	}
	want := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	for _, raw := range []string{"Wed, 30 Jun 2027 00:00:00 GMT", "2027-06-30T00:00:00Z", "2027-06-30T02:00:00+02:00", "2027-06-30"} {
		got := mustLoad(t, ":8081", map[string]string{"API_V1_SUNSET": raw}).APIV1Sunset
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("API_V1_SUNSET=%q: got %v, want %v", raw, got, want)
		}
	}
	for _, raw := range []string{"soon", "30/06/2027", "2027-13-01"} {
		_, err := Load(":8081", env(map[string]string{"API_V1_SUNSET": raw}))
		assertOneLineError(t, err, "API_V1_SUNSET")
	}
}
