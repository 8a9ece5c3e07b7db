package flags

import (
	"context"

	"github.com/open-feature/go-sdk/openfeature"
)

// ProviderName is the OpenFeature provider's name (its Metadata).
const ProviderName = "talentforge-flags"

// provider is our OpenFeature provider: boolean flags read from the in-memory values
// of a Flags (start-up values overridden by the Redis hash, refreshed in the
// background), so an evaluation never leaves the process. The flags are booleans only:
// the other types answer TYPE_MISMATCH for a known flag and FLAG_NOT_FOUND otherwise.
type provider struct {
	f *Flags
}

var _ openfeature.FeatureProvider = (*provider)(nil)

func (p *provider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: ProviderName} }

func (p *provider) Hooks() []openfeature.Hook { return nil }

func (p *provider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	on, ok := (*p.f.values.Load())[flag]
	if !ok {
		return openfeature.BoolResolutionDetail{Value: defaultValue, ProviderResolutionDetail: notFound(flag)}
	}
	variant := "off"
	if on {
		variant = "on"
	}
	// STATIC: no targeting; the value is the same for every evaluation context.
	return openfeature.BoolResolutionDetail{Value: on,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{Reason: openfeature.StaticReason, Variant: variant}}
}

func (p *provider) StringEvaluation(_ context.Context, flag string, defaultValue string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	return openfeature.StringResolutionDetail{Value: defaultValue, ProviderResolutionDetail: notBoolean(flag)}
}

func (p *provider) FloatEvaluation(_ context.Context, flag string, defaultValue float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return openfeature.FloatResolutionDetail{Value: defaultValue, ProviderResolutionDetail: notBoolean(flag)}
}

func (p *provider) IntEvaluation(_ context.Context, flag string, defaultValue int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return openfeature.IntResolutionDetail{Value: defaultValue, ProviderResolutionDetail: notBoolean(flag)}
}

func (p *provider) ObjectEvaluation(_ context.Context, flag string, defaultValue any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return openfeature.InterfaceResolutionDetail{Value: defaultValue, ProviderResolutionDetail: notBoolean(flag)}
}

func notFound(flag string) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{Reason: openfeature.ErrorReason,
		ResolutionError: openfeature.NewFlagNotFoundResolutionError("no feature flag " + flag)}
}

// notBoolean answers a non-boolean evaluation: TYPE_MISMATCH for a known flag (every
// flag is a boolean), FLAG_NOT_FOUND for any other name.
func notBoolean(flag string) openfeature.ProviderResolutionDetail {
	if _, ok := lookup(flag); !ok {
		return notFound(flag)
	}
	return openfeature.ProviderResolutionDetail{Reason: openfeature.ErrorReason,
		ResolutionError: openfeature.NewTypeMismatchResolutionError("feature flag " + flag + " is a boolean")}
}
