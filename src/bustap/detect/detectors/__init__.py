"""The built-in detectors, one module each, registered with
``@register_detector``; ``bustap.detect.detector_classes()`` imports them."""
