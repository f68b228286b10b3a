package app

import "log/slog"

// applyDescriptorLimit raises the process's descriptor limit to its maximum
// and sizes the listener limit to what the process can hold: "auto" takes
// the whole budget, a number is capped to it. It logs the effective values.
func (st *settings) applyDescriptorLimit(log *slog.Logger) {
	soft, hard, err := raiseDescriptorLimit()
	if err != nil {
		log.Warn("could not raise the descriptor limit", "error", err, "soft", soft, "hard", hard)
	}
	budget := listenerBudget(soft)
	c := &st.server
	switch {
	case budget <= 0:
		// Unknown limit: keep what was asked, or the default.
	case st.maxListeners == "auto" || c.MaxListeners > budget:
		if st.maxListeners != "auto" {
			log.Warn("max-listeners is above what the descriptor limit allows; capped",
				"asked", c.MaxListeners, "capped_to", budget, "descriptor_limit", soft)
		}
		c.MaxListeners = budget
	}
	log.Info("descriptor limit", "soft", soft, "hard", hard, "max_listeners", c.MaxListeners)
}
