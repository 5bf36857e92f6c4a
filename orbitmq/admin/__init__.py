"""orbitmq.admin"""
