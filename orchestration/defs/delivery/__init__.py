"""Delivery of finished reports: the sensor that releases and sends notifications, and its notifier resource."""
