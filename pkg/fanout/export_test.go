package fanout

// TopicSleepers returns how many subscribers are asleep on the named topic
// or pattern ("" for subscribers to every topic), for black-box tests.
func (r *Ring) TopicSleepers(name string) int {
	t := r.root
	if name != "" {
		if v, ok := r.topics.patterns.Load(name); ok {
			t = v.(*Topic) //nolint:forcetypeassert // only *Topic is stored
		} else if t = r.topics.get(name); t == nil {
			return 0
		}
	}
	return int(t.sleeping.Load())
}
